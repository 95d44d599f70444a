#!/usr/bin/env python3
"""Drives `isoboot bmc ...` against tests/bmc/fake_bmc.py, one fake per case.

Checks per vendor tree the exact mutating requests and their payloads, the
error shown to the user and the exit code, that every session created was
deleted, and that the password never shows up in the process arguments, a
URL, a header, a log line or output. The fake BMC really downloads the ISO
(Range requests) from Python's http.server.
"""
import base64, json, os, shutil, signal, stat, subprocess, sys, tempfile, time, unittest
import urllib.request

BIN = os.environ["ISOBOOT_BIN"]
SRC = os.environ["ISOBOOT_SOURCE_DIR"]
# Real vendor JSON trees (see redfish-mockups/README.md for sources and licenses).
MOCKUPS = os.path.join(SRC, "tests/bmc/redfish-mockups")
FAKE = os.path.join(SRC, "tests/bmc/fake_bmc.py")
PASSWORD = "Pw-%d-never-show-me" % os.getpid()
TMP = tempfile.mkdtemp(prefix="bmc.%d." % os.getpid(),
                       dir=os.environ.get("ISOBOOT_TEST_TMP") or None)
R = "/redfish/v1"
procs = []


def setUpModule():
    global CERT, KEY, IMG_URL
    CERT, KEY = os.path.join(TMP, "cert.pem"), os.path.join(TMP, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", KEY,
                    "-out", CERT, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    img = os.path.join(TMP, "img")
    os.makedirs(img)
    with open(os.path.join(img, "live.iso"), "wb") as f:
        f.write(os.urandom(64 * 1024))
    port_file = os.path.join(TMP, "img.port")
    # http.server with port 0 prints the port it got; read it from its output.
    p = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "-b", "127.0.0.1", "0",
                          "-d", img], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    procs.append(p)
    line = p.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N (...)"
    IMG_URL = "http://127.0.0.1:%s/live.iso" % line.split(" port ")[1].split()[0]


def tearDownModule():
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(TMP, ignore_errors=True)


class Fake:
    n = 0

    def __init__(self, profile, *flags):
        Fake.n += 1
        self.dir = os.path.join(TMP, "fake%d-%s" % (Fake.n, profile))
        os.makedirs(self.dir)
        self.log = os.path.join(self.dir, "log")
        port_file = os.path.join(self.dir, "port")
        self.p = subprocess.Popen([sys.executable, FAKE, "--mockups", MOCKUPS, "--profile", profile,
                                   "--cert", CERT, "--key", KEY, "--port-file", port_file,
                                   "--log", self.log, "--password", PASSWORD] + list(flags))
        procs.append(self.p)
        for _ in range(300):
            if os.path.exists(port_file):
                break
            assert self.p.poll() is None, "fake BMC died"
            time.sleep(0.05)
        with open(port_file) as f:
            self.host = "127.0.0.1:" + f.read()

    def stop(self):
        self.p.terminate()
        self.p.wait()

    def requests(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(l) for l in f]

    def mutations(self):
        out = []
        for r in self.requests():
            if r["method"] != "GET":
                body = json.loads(r["body"]) if r["body"] else None
                out.append((r["method"], r["path"], body, r["status"]))
        return out

    def state(self):
        with open(self.log + ".state") as f:
            return json.load(f)


def run(fake_or_host, action, *extra, env_extra=None, password_env=True, timeout=120):
    host = fake_or_host.host if isinstance(fake_or_host, Fake) else fake_or_host
    args = [BIN, "--log-level", "trace", "bmc", action, "--user", "admin",
            "--poll-interval", "0.02", "--mount-timeout", "1", "--power-timeout", "1"]
    if host:
        args += ["--bmc", host]
    if "--insecure" not in extra and "--no-ca" not in extra:
        args += ["--ca", CERT]
    args += [a for a in extra if a != "--no-ca"]
    env = dict(os.environ)
    if password_env:
        env["BMC_PW"] = PASSWORD
        args += ["--password-env", "BMC_PW"]
    env.update(env_extra or {})
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    cmdline = b""
    for _ in range(200):  # bounded: until exec has replaced the child
        try:
            with open("/proc/%d/cmdline" % p.pid, "rb") as f:
                cmdline = f.read()
        except OSError:
            break
        if BIN.encode() in cmdline:
            break
        time.sleep(0.005)
    out, err = p.communicate(timeout=timeout)
    # A fast failure can exit before /proc was read: then check what was run.
    if BIN.encode() not in cmdline:
        cmdline = "\0".join(args).encode()
    return p.returncode, out, err, cmdline


class Base(unittest.TestCase):
    def check_hygiene(self, fake, res):
        rc, out, err, cmdline = res
        self.assertIn(b"bmc", cmdline)
        self.assertNotIn(PASSWORD.encode(), cmdline)
        self.assertNotIn(PASSWORD, out)
        self.assertNotIn(PASSWORD, err)
        created, deleted = [], []
        for r in fake.requests():
            self.assertNotIn(PASSWORD, r["path"])
            for k, v in r["headers"].items():
                self.assertNotIn(PASSWORD, v, k)
            if PASSWORD in r["body"]:
                self.assertEqual(r["method"], "POST")
                self.assertTrue(r["path"].endswith("Sessions"), r["path"])
            if r["method"] == "POST" and r["path"].endswith("Sessions") and r["status"] == 201:
                created.append(r["reply_headers"]["Location"])
            if r["method"] == "DELETE" and r["status"] == 204:
                deleted.append(r["path"])
        expired = fake.state().get("expired", [])  # timed out on the BMC's side
        self.assertEqual(sorted(set(created) - set(expired)), sorted(deleted))
        self.assertEqual(fake.state()["open_sessions"], [])

    def go(self, fake, action, *extra, expect=0, **kw):
        res = run(fake, action, *extra, **kw)
        self.assertEqual(res[0], expect, res[2])
        self.check_hygiene(fake, res)
        return res

    def boot(self, profile, *flags, expect=0, extra=()):
        fake = Fake(profile, *flags)
        res = self.go(fake, "boot", "--iso", IMG_URL, *extra, expect=expect)
        fake.stop()
        return fake, res


def S(fake):  # mutations without the session login/logout
    return [(m, p, b) for m, p, b, _ in fake.mutations()
            if not (p.endswith("Sessions") or "/Sessions/" in p)]


ILO_SLOT = R + "/Managers/1/VirtualMedia/2"
AMI_SLOT = R + "/Managers/Self/VirtualMedia/CD1"
DMTF_SYS = R + "/Systems/437XR1138R2"


class Vendors(Base):
    def test_ilo5_boot(self):
        fake, _ = self.boot("ilo5")
        self.assertEqual(S(fake), [
            ("POST", ILO_SLOT + "/Actions/VirtualMedia.InsertMedia", {"Image": IMG_URL}),
            ("PATCH", ILO_SLOT, {"Oem": {"Hpe": {"BootOnNextServerReset": True}}}),
            ("PATCH", R + "/Systems/1",
             {"Boot": {"BootSourceOverrideTarget": "Cd", "BootSourceOverrideEnabled": "Once"}}),
            ("POST", R + "/Systems/1/Actions/ComputerSystem.Reset", {"ResetType": "ForceRestart"}),
        ])
        st = fake.state()
        self.assertTrue(st["slot"]["Inserted"])
        self.assertEqual(st["slot"]["Image"], IMG_URL)
        self.assertEqual(st["booted_from"], "Cd")

    def test_ilo5_retries_boot_patch_during_post(self):
        fake, _ = self.boot("ilo5", "--post-busy", "2")
        patches = [r for r in fake.mutations() if r[0] == "PATCH" and r[1] == R + "/Systems/1"]
        self.assertEqual([r[3] for r in patches], [400, 400, 204])

    def test_ilo5_ejects_other_media_first(self):
        fake, _ = self.boot("ilo5", "--preinserted", "http://10.0.0.9/old.iso")
        self.assertEqual(S(fake)[:2], [
            ("POST", ILO_SLOT + "/Actions/VirtualMedia.EjectMedia", {}),
            ("POST", ILO_SLOT + "/Actions/VirtualMedia.InsertMedia", {"Image": IMG_URL})])

    def test_ilo5_eject_when_empty_is_tolerated(self):
        fake = Fake("ilo5")
        self.go(fake, "eject")
        self.assertEqual([(m, p, s) for m, p, _, s in fake.mutations() if "Eject" in p],
                         [("POST", ILO_SLOT + "/Actions/VirtualMedia.EjectMedia", 400)])

    def test_ilo5_early_firmware_uses_oem_action(self):
        fake, _ = self.boot("ilo5-early")
        self.assertEqual(S(fake)[0], (
            "POST", ILO_SLOT + "/Actions/Oem/Hpe/HpeiLOVirtualMedia.InsertVirtualMedia/",
            {"Image": IMG_URL}))

    def test_ilo5_task_monitor(self):
        fake, _ = self.boot("ilo5", "--task-202")
        reqs = fake.requests()
        monitors = [r for r in reqs if "/TaskMonitors/" in r["path"]]
        self.assertEqual([r["status"] for r in monitors][:3], [202, 202, 204])
        self.assertTrue(fake.state()["slot"]["Inserted"])

    def test_ami_boot(self):
        fake, _ = self.boot("ami")
        m = S(fake)
        self.assertEqual(m[0], ("POST", AMI_SLOT + "/Actions/VirtualMedia.InsertMedia",
                                {"Image": IMG_URL}))
        self.assertEqual(m[1], ("POST", AMI_SLOT + "/Actions/VirtualMedia.InsertMedia",
                                {"Image": IMG_URL, "TransferProtocolType": "HTTP"}))
        self.assertEqual(m[2], ("PATCH", R + "/Systems/Self", {"Boot": {
            "BootSourceOverrideTarget": "Cd", "BootSourceOverrideEnabled": "Once",
            "BootSourceOverrideMode": "Legacy"}}))
        self.assertEqual(m[3], ("POST", R + "/Systems/Self/Actions/ComputerSystem.Reset",
                                {"ResetType": "ForceRestart"}))
        self.assertEqual(len(m), 4)
        reqs = fake.requests()
        i = [n for n, r in enumerate(reqs) if r["method"] == "PATCH"][0]
        patch = reqs[i]
        get = [r for r in reqs[:i] if r["method"] == "GET" and r["path"] == R + "/Systems/Self"][-1]
        self.assertEqual(patch["headers"].get("If-Match"), get["reply_headers"]["ETag"])
        self.assertEqual(patch["status"], 204)
        self.assertIn("Started", fake.state()["slot"]["Oem"]["Ami"]["RedirectionStatus"])

    def test_ami_stale_etag_412_then_retry(self):
        fake, _ = self.boot("ami", "--stale-etag")
        patches = [r for r in fake.requests() if r["method"] == "PATCH"]
        self.assertEqual([r["status"] for r in patches], [412, 204])
        self.assertNotEqual(patches[0]["headers"]["If-Match"], patches[1]["headers"]["If-Match"])

    def test_ami_powered_off_gets_on(self):
        fake, _ = self.boot("ami", "--power", "Off")
        self.assertEqual(S(fake)[-1][2], {"ResetType": "On"})
        self.assertEqual(fake.state()["system"]["PowerState"], "On")

    def test_ami_slow_mount(self):
        fake, _ = self.boot("ami", "--slow-mount", "8")
        slot_gets = [r for r in fake.requests() if r["method"] == "GET" and r["path"] == AMI_SLOT]
        self.assertGreaterEqual(len(slot_gets), 9)

    def test_ami_refuses_http(self):
        fake, res = self.boot("ami", "--http-only-nfs", expect=6)
        self.assertIn("does not mount HTTP images", res[2])

    def test_dmtf_patch_insert(self):
        # The DMTF tree's CD1 holds freeOS.1.1.iso (ConnectedVia Applet): eject it first.
        fake, _ = self.boot("dmtf")
        self.assertEqual(S(fake), [
            ("PATCH", DMTF_SYS + "/VirtualMedia/CD1", {"Image": None, "Inserted": False}),
            ("PATCH", DMTF_SYS + "/VirtualMedia/CD1",
             {"Image": IMG_URL, "Inserted": True, "WriteProtected": True}),
            ("PATCH", DMTF_SYS,
             {"Boot": {"BootSourceOverrideTarget": "Cd", "BootSourceOverrideEnabled": "Once"}}),
            ("POST", DMTF_SYS + "/Actions/ComputerSystem.Reset", {"ResetType": "ForceRestart"}),
        ])

    def test_supermicro_transfer_method_and_usbcd(self):
        fake, _ = self.boot("supermicro")
        m = S(fake)
        self.assertEqual([(p.rsplit("/", 1)[-1], b) for _, p, b in m[:3]],
                         [("VirtualMedia.EjectMedia", {}),
                          ("VirtualMedia.InsertMedia", {"Image": IMG_URL}),
                          ("VirtualMedia.InsertMedia",
                           {"Image": IMG_URL, "TransferMethod": "Stream"})])
        self.assertEqual(m[3][2], {"Boot": {"BootSourceOverrideTarget": "UsbCd",
                                            "BootSourceOverrideEnabled": "Once"}})

    def test_credentials_required(self):
        fake, _ = self.boot("supermicro", "--requires", "UserName")
        self.assertEqual(S(fake)[2][2],
                         {"Image": IMG_URL, "UserName": "none", "Password": "none"})

    def test_idrac_oem_boot_with_task(self):
        fake, _ = self.boot("idrac")
        m = S(fake)
        vm = R + "/Managers/iDRAC.Embedded.1/VirtualMedia/CD"
        self.assertEqual(m[0], ("POST", vm + "/Actions/VirtualMedia.InsertMedia", {"Image": IMG_URL}))
        self.assertEqual(m[1][1], R + "/Managers/iDRAC.Embedded.1/Actions/Oem/"
                                      "EID_674_Manager.ImportSystemConfiguration")
        self.assertIn("ServerBoot.1#FirstBootDevice\">VCD-DVD", m[1][2]["ImportBuffer"])
        self.assertEqual(m[2][2], {"ResetType": "ForceRestart"})
        self.assertEqual(len(m), 3)  # no standard Boot PATCH on iDRAC
        self.assertEqual(fake.state()["dell_boot_once"], "VCD-DVD")

    def test_openbmc_without_virtual_media(self):
        fake, res = self.boot("openbmc", expect=5)
        self.assertIn("offers no virtual media", res[2])
        self.assertEqual(S(fake), [])


PXE_ONCE = {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}


class NetBoot(Base):
    """`bmc boot --via pxe`: a one-time network boot, no virtual media touched."""

    def pxe(self, profile, *flags, expect=0, extra=()):
        fake = Fake(profile, *flags)
        res = self.go(fake, "boot", "--via", "pxe", "--json", *extra, expect=expect)
        fake.stop()
        # Not one request about virtual media, not even a GET.
        self.assertEqual([r["path"] for r in fake.requests() if "VirtualMedia" in r["path"]], [])
        return fake, res

    def check(self, fake, res, system, boot, reset):
        # What the BMC took (refused attempts are each test's business).
        took = [(m, p, b) for m, p, b, st in fake.mutations()
                if st < 300 and not (p.endswith("Sessions") or "/Sessions/" in p)]
        self.assertEqual(took, [("PATCH", system, {"Boot": boot}),
                                ("POST", system + "/Actions/ComputerSystem.Reset",
                                 {"ResetType": reset})])
        st = fake.state()
        self.assertEqual({k: st["system"]["Boot"][k] for k in PXE_ONCE}, PXE_ONCE)
        self.assertEqual(st["booted_from"], "Pxe")
        j = json.loads(res[1])
        self.assertEqual((j["ok"], j["via"]), (True, "pxe"))
        self.assertNotIn("bytes_pulled", j)

    def test_ilo5(self):
        # iLO refuses the PATCH during POST: retried; no BootOnNextServerReset (a CD flag).
        fake, res = self.pxe("ilo5", "--post-busy", "2")
        patches = [r for r in fake.mutations() if r[0] == "PATCH"]
        self.assertEqual([(p, b, st) for _, p, b, st in patches],
                         [(R + "/Systems/1", {"Boot": PXE_ONCE}, 400)] * 2 +
                         [(R + "/Systems/1", {"Boot": PXE_ONCE}, 204)])
        self.check(fake, res, R + "/Systems/1", PXE_ONCE, "ForceRestart")

    def test_ami_sends_the_triple_with_if_match(self):
        fake, res = self.pxe("ami", "--stale-etag")
        reqs = fake.requests()
        patches = [r for r in reqs if r["method"] == "PATCH"]
        self.assertEqual([r["status"] for r in patches], [412, 204])  # stale ETag: GET, retry
        i = reqs.index(patches[-1])
        get = [r for r in reqs[:i] if r["method"] == "GET" and r["path"] == R + "/Systems/Self"][-1]
        self.assertEqual(patches[-1]["headers"].get("If-Match"), get["reply_headers"]["ETag"])
        boot = dict(PXE_ONCE, BootSourceOverrideMode="Legacy")
        self.assertEqual(json.loads(patches[0]["body"]), {"Boot": boot})
        self.check(fake, res, R + "/Systems/Self", boot, "ForceRestart")

    def test_dmtf(self):
        # The tree already says Pxe/Once: the PATCH in the log is what counts.
        fake, res = self.pxe("dmtf")
        self.check(fake, res, DMTF_SYS, PXE_ONCE, "ForceRestart")

    def test_idrac_uses_the_standard_override(self):
        fake, res = self.pxe("idrac")
        self.check(fake, res, R + "/Systems/System.Embedded.1", PXE_ONCE, "ForceRestart")
        self.assertIsNone(fake.state()["dell_boot_once"])  # no ImportSystemConfiguration

    def test_openbmc_powered_off(self):
        # Stock OpenBMC has no virtual media at all: PXE is how it boots.
        fake, res = self.pxe("openbmc")
        self.check(fake, res, R + "/Systems/system", PXE_ONCE, "On")
        self.assertEqual(fake.state()["system"]["PowerState"], "On")

    def test_restart_that_shows_nothing_sets_pxe_again(self):
        fake, res = self.pxe("dmtf", "--restart-shows", "nothing")
        self.assertEqual([(p.rsplit("/", 1)[-1], b) for _, p, b in S(fake)], [
            ("437XR1138R2", {"Boot": PXE_ONCE}), ("ComputerSystem.Reset", {"ResetType": "ForceRestart"}),
            ("ComputerSystem.Reset", {"ResetType": "ForceOff"}), ("437XR1138R2", {"Boot": PXE_ONCE}),
            ("ComputerSystem.Reset", {"ResetType": "On"})])

    def test_pxe_not_allowed(self):
        fake, res = self.pxe("dmtf", "--boot-targets", "None,Cd,Hdd", expect=8)
        j = json.loads(res[1])
        self.assertIn("does not allow a boot override to Pxe (allowed: None, Cd, Hdd)", j["error"])
        self.assertEqual(j["failure"], "boot-override")
        self.assertEqual(S(fake), [])

    def test_human_output_says_pxe(self):
        fake = Fake("dmtf")
        res = self.go(fake, "boot", "--via", "pxe")
        self.assertEqual(res[1], "%s: booting via pxe (generic Redfish)\n" % fake.host)
        self.assertIn("setting one-time network boot (Pxe)", res[2])

    def test_usage_errors(self):
        fake = Fake("dmtf")
        for extra, says in ((("--iso", IMG_URL), "drop --iso and --serve"),
                            (("--serve", FAKE), "drop --iso and --serve")):
            res = self.go(fake, "boot", "--via", "pxe", *extra, expect=2)
            self.assertIn(says, res[2])
        res = self.go(fake, "insert", "--via", "pxe", expect=2)
        self.assertIn("--via pxe goes with boot", res[2])
        res = run(fake, "boot", "--via", "usb")
        self.assertNotEqual(res[0], 0)
        self.assertEqual(fake.requests(), [])

    def test_bmc_file_in_parallel(self):
        fakes = [Fake("ilo5"), Fake("ami"), Fake("openbmc"), Fake("dmtf", "--boot-targets", "Cd")]
        hosts = os.path.join(TMP, "pxe-hosts.txt")
        with open(hosts, "w") as f:
            f.write("\n".join(x.host for x in fakes) + "\n")
        res = run("", "boot", "--via", "pxe", "--bmc-file", hosts, "--json")
        self.assertEqual(res[0], 12, res[2])
        results = json.loads(res[1])
        self.assertEqual([(r["exit_code"], r["via"] if r["ok"] else None) for r in results],
                         [(0, "pxe"), (0, "pxe"), (0, "pxe"), (8, None)])
        for x in fakes:
            self.check_hygiene(x, res)
            self.assertEqual([r for r in x.requests() if "VirtualMedia" in r["path"]], [])
        for x in fakes[:3]:
            self.assertEqual(x.state()["booted_from"], "Pxe")


class Failures(Base):
    def test_never_mounts(self):
        fake, res = self.boot("ilo5", "--never-mount", expect=7)
        self.assertIn("did not mount it", res[2])
        self.assertIn("Inserted=false", res[2])
        # The image answers isoboot itself: the message says so.
        self.assertIn("(from here it answers 200 with ", res[2])
        self.assertFalse(any("Reset" in p for _, p, _ in S(fake)))

    def test_unreachable_url(self):
        fake = Fake("ilo5")
        res = self.go(fake, "boot", "--iso", "http://127.0.0.1:9/nobody.iso", expect=7)
        fake.stop()
        errors = [l for l in res[2].splitlines() if l.startswith("isoboot: error:")]
        self.assertEqual(len(errors), 1, res[2])
        self.assertIn("did not mount it", errors[0])
        self.assertRegex(errors[0], r"\(from here: .*[Cc]onnect.*\)$")
        self.assertFalse(any("Reset" in p for _, p, _ in S(fake)))

    def test_never_powers_on(self):
        fake, res = self.boot("dmtf", "--power", "Off", "--never-power-on", expect=9)
        self.assertIn("did not reach power On", res[2])
        self.assertEqual(S(fake)[-1][2], {"ResetType": "On"})

    def test_restarted_host_that_never_comes_back(self):
        # On, restarted, then Off for good: not "booted".
        fake, res = self.boot("dmtf", "--never-power-on", expect=9)
        self.assertIn("went down after the reset and did not come back", res[2])
        self.assertEqual(S(fake)[-1][2], {"ResetType": "ForceRestart"})

    def test_restart_seen_in_boot_progress_alone(self):
        # PowerState stays On; BootProgress (DMTF) or PostState (iLO) shows the new boot.
        for profile in ("dmtf", "ilo5"):
            fake, res = self.boot(profile, "--restart-shows", "progress")
            self.assertEqual(S(fake)[-1][2], {"ResetType": "ForceRestart"}, profile)

    def test_restart_that_shows_nothing_is_made_sure_of(self):
        fake, res = self.boot("dmtf", "--restart-shows", "nothing")
        self.assertEqual([b for _, p, b in S(fake) if p.endswith("ComputerSystem.Reset")],
                         [{"ResetType": "ForceRestart"}, {"ResetType": "ForceOff"},
                          {"ResetType": "On"}])
        # The one-time CD boot is set again between ForceOff and On.
        tail = S(fake)[-3:]
        self.assertEqual(tail[0][2], {"ResetType": "ForceOff"})
        self.assertEqual(tail[1], ("PATCH", DMTF_SYS, {"Boot": {
            "BootSourceOverrideTarget": "Cd", "BootSourceOverrideEnabled": "Once"}}))
        self.assertIn("no sign of the restart", res[2])
        self.assertEqual(fake.state()["system"]["PowerState"], "On")

    def test_wrong_password(self):
        fake = Fake("ilo5")
        res = self.go(fake, "status", env_extra={"BMC_PW": "wrong"}, expect=4)
        self.assertIn("login as admin refused", res[2])

    def test_session_limit_falls_back_to_basic(self):
        fake = Fake("ilo5", "--session-limit", "0")
        self.go(fake, "insert", "--iso", IMG_URL)
        later = [r for r in fake.requests() if r["method"] != "GET" or r["path"] != R + "/"][1:]
        self.assertTrue(all(r["headers"].get("Authorization", "").startswith("Basic ")
                            for r in later))

    def test_expired_session_logs_in_again(self):
        fake, res = self.boot("ilo5", "--expire-after", "6")
        self.assertEqual(len(fake.state()["expired"]), 1)
        logins = [r for r in fake.requests() if r["method"] == "POST" and r["path"].endswith("Sessions")]
        self.assertEqual([r["status"] for r in logins], [201, 201])
        self.assertIn("session expired, logging in again", res[2])

    def test_tls_verified_by_default(self):
        fake = Fake("ilo5")
        res = self.go(fake, "status", "--no-ca", expect=3)
        self.assertIn("--insecure", res[2])
        res = self.go(fake, "status", "--insecure")
        self.assertIn("not checked", res[2])

    def test_no_password_no_tty(self):
        fake = Fake("ilo5")
        res = self.go(fake, "status", password_env=False, expect=2)
        self.assertIn("--password-env", res[2])

    def test_password_file(self):
        fake = Fake("dmtf")
        pw = os.path.join(fake.dir, "pw")
        with open(pw, "w") as f:
            f.write(PASSWORD + "\n")
        res = self.go(fake, "status", "--json", "--password-file", pw, password_env=False)
        j = json.loads(res[1])
        self.assertTrue(j["ok"])
        self.assertEqual(j["status"]["power_state"], "On")
        self.assertEqual(j["status"]["media"]["slot"], DMTF_SYS + "/VirtualMedia/CD1")


class Fleet(Base):
    def test_bmc_file_in_parallel(self):
        fakes = [Fake("ilo5"), Fake("ami"), Fake("openbmc")]
        hosts = os.path.join(TMP, "hosts.txt")
        with open(hosts, "w") as f:
            f.write("# fleet\n" + "\n".join(x.host for x in fakes) + "\n")
        res = run("", "boot", "--iso", IMG_URL, "--bmc-file", hosts, "--json")
        self.assertEqual(res[0], 12, res[2])
        results = json.loads(res[1])
        self.assertEqual([r["exit_code"] for r in results], [0, 0, 5])
        for x in fakes:
            self.check_hygiene(x, res)
            self.assertIn(x.host + ": ", res[2])  # a progress line per host

ILO_DATA_SLOT = R + "/Managers/1/VirtualMedia/1"
DMTF_DATA_SLOT = DMTF_SYS + "/VirtualMedia/Floppy1"


class DataMedium(Base):
    """--data DIR: an image of DIR labelled PITDATA, served by isoboot and inserted into the
    BMC's second slot (USB stick / removable disk, else a second CD)."""

    def data_dir(self, name="data"):
        d = os.path.join(TMP, "%s-%d" % (name, Fake.n))
        os.makedirs(os.path.join(d, "sub"))
        with open(os.path.join(d, "system_config.yaml"), "w") as f:
            f.write("pit: true\n")
        with open(os.path.join(d, "sub", "conf"), "w") as f:
            f.write("nested\n")
        return d

    def serve_data(self, fake, action, *extra, fetch=None):
        """`bmc ACTION --data ...` until it serves (or exits), then Ctrl-C; `fetch(url)` runs
        while it serves, with the data image's URL from the log."""
        err_path = os.path.join(fake.dir, "isoboot-%s.err" % action)
        p = start(fake, action, "--http-address", "127.0.0.1", "--http-port", "0", *extra,
                  err_path=err_path)
        # What ran, should it exit before /proc is read.
        cmdline = "\0".join([BIN, "bmc", action] + list(extra)).encode()
        for _ in range(600):  # bounded: 30 s
            with open(err_path) as f:
                if "until interrupted" in f.read():
                    break
            try:
                with open("/proc/%d/cmdline" % p.pid, "rb") as f:
                    cmdline = f.read() or cmdline
            except OSError:
                pass
            if p.poll() is not None:
                break
            time.sleep(0.05)
        fetched = None
        if p.poll() is None:
            if fetch:
                with open(err_path) as f:
                    line = [l for l in f.read().splitlines() if "serving the data image" in l][0]
                fetched = fetch(line.split(" at ")[-1].split()[0])
            p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=60)
        with open(err_path) as f:
            err = f.read()
        self.check_hygiene(fake, (p.returncode, out, err, cmdline))
        return p.returncode, out, err, fetched

    def test_ilo5_data_in_the_usb_slot(self):
        fake = Fake("ilo5")
        def fetch(url):
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read()
        rc, out, err, image = self.serve_data(fake, "boot", "--iso", IMG_URL, "--data",
                                              self.data_dir(), "--json", fetch=fetch)
        self.assertEqual(rc, 0, err)
        j = json.loads(out)
        self.assertEqual(j["data_slot"], ILO_DATA_SLOT)
        self.assertTrue(j["data_image"].endswith("/PITDATA.iso"), j)
        # The ISO to the CD slot, the data image to the Floppy/USBStick slot, before the boot.
        self.assertEqual(S(fake)[:3], [
            ("POST", ILO_SLOT + "/Actions/VirtualMedia.InsertMedia", {"Image": IMG_URL}),
            ("POST", ILO_DATA_SLOT + "/Actions/VirtualMedia.InsertMedia",
             {"Image": j["data_image"]}),
            ("PATCH", ILO_SLOT, {"Oem": {"Hpe": {"BootOnNextServerReset": True}}})])
        st = fake.state()
        self.assertEqual((st["data_slot"]["Image"], st["data_slot"]["Inserted"]),
                         (j["data_image"], True))
        self.assertEqual(st["slot"]["Image"], IMG_URL)
        # The fake BMC read the data image from isoboot's server: its volume descriptor.
        self.assertEqual([x["status"] for x in st["fetched"] if x["url"] == j["data_image"]],
                         [206, 206])
        self.assertEqual(image[32768:32774], b"\x01CD001")
        self.assertEqual(image[32808:32840].rstrip(b" "), b"PITDATA")
        self.assertIn("the data image mounted", err)
        self.check_with_other_readers(image)
        fake.stop()

    def check_with_other_readers(self, image):
        """The served image as other ISO 9660 readers see it: the volume id (isoinfo where
        genisoimage is installed, xorriso), the files (xorriso) and their bytes (bsdtar)."""
        d = tempfile.mkdtemp(dir=TMP)
        path = os.path.join(d, "PITDATA.iso")
        with open(path, "wb") as f:
            f.write(image)
        if shutil.which("isoinfo"):
            info = subprocess.run(["isoinfo", "-d", "-i", path], capture_output=True, text=True,
                                  check=True).stdout
            self.assertIn("Volume id: PITDATA\n", info)
        pvd = subprocess.run(["xorriso", "-indev", path, "-pvd_info"], capture_output=True,
                             text=True, check=True).stdout
        self.assertIn("Volume Id    : PITDATA\n", pvd)
        found = subprocess.run(["xorriso", "-indev", path, "-find", "/", "-type", "f"],
                               capture_output=True, text=True, check=True).stdout
        self.assertEqual(sorted(found.split()), ["'/sub/conf'", "'/system_config.yaml'"])
        os.makedirs(os.path.join(d, "x"))
        subprocess.run(["bsdtar", "-x", "-f", path, "-C", os.path.join(d, "x")], check=True)
        with open(os.path.join(d, "x", "system_config.yaml")) as f:
            self.assertEqual(f.read(), "pit: true\n")
        with open(os.path.join(d, "x", "sub", "conf")) as f:
            self.assertEqual(f.read(), "nested\n")

    def test_ilo5_insert_then_eject_both(self):
        fake = Fake("ilo5")
        rc, out, err, _ = self.serve_data(fake, "insert", "--iso", IMG_URL, "--data",
                                          self.data_dir(), "--data-label", "CONF_2")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"^%s: data image http://127\.0\.0\.1:[0-9]+/CONF_2\.iso in %s\n$" % (
            fake.host, ILO_DATA_SLOT))
        self.assertTrue(fake.state()["data_slot"]["Image"].endswith("/CONF_2.iso"))
        _, out, _, _ = self.go(fake, "status", "--json")
        d = json.loads(out)["status"]["data_media"]
        self.assertEqual((d["slot"], d["inserted"]), (ILO_DATA_SLOT, True))
        self.assertTrue(d["image"].endswith("/CONF_2.iso"), d)
        _, out, _, _ = self.go(fake, "status")
        self.assertIn("\n  data slot %s: inserted http://" % ILO_DATA_SLOT, out)
        before = len(S(fake))
        self.go(fake, "eject")
        self.assertEqual(S(fake)[before:], [
            ("POST", ILO_SLOT + "/Actions/VirtualMedia.EjectMedia", {}),
            ("POST", ILO_DATA_SLOT + "/Actions/VirtualMedia.EjectMedia", {})])
        st = fake.state()
        self.assertFalse(st["slot"]["Inserted"])
        self.assertFalse(st["data_slot"]["Inserted"])
        fake.stop()

    def test_dmtf_floppy_by_patch(self):
        fake = Fake("dmtf")
        rc, out, err, _ = self.serve_data(fake, "boot", "--iso", IMG_URL, "--data",
                                          self.data_dir(), "--json")
        self.assertEqual(rc, 0, err)
        j = json.loads(out)
        self.assertEqual(j["data_slot"], DMTF_DATA_SLOT)
        # Floppy1 holds Sardine.img in the tree: ejected first, then the PATCH insert.
        self.assertEqual([m for m in S(fake) if m[1] == DMTF_DATA_SLOT], [
            ("PATCH", DMTF_DATA_SLOT, {"Image": None, "Inserted": False}),
            ("PATCH", DMTF_DATA_SLOT, {"Image": j["data_image"], "Inserted": True,
                                       "WriteProtected": True})])
        self.assertTrue(fake.state()["data_slot"]["Inserted"])
        fake.stop()

    def test_a_second_cd_slot_when_there_is_no_usb_one(self):
        fake = Fake("dmtf", "--second-cd")
        rc, out, err, _ = self.serve_data(fake, "boot", "--iso", IMG_URL, "--data",
                                          self.data_dir(), "--json")
        self.assertEqual(rc, 0, err)
        j = json.loads(out)
        # Two CD slots: the ISO in one, the data image in the other.
        st = fake.state()
        self.assertEqual(sorted([st["slot"]["Image"], st["data_slot"]["Image"]]),
                         sorted([IMG_URL, j["data_image"]]))
        self.assertIn(j["data_slot"], (DMTF_DATA_SLOT, DMTF_SYS + "/VirtualMedia/CD1"))
        self.assertTrue(st["slot"]["Inserted"] and st["data_slot"]["Inserted"])
        fake.stop()

    def test_ami_has_no_second_slot(self):
        fake = Fake("ami")
        rc, out, err, _ = self.serve_data(fake, "boot", "--iso", IMG_URL, "--data",
                                          self.data_dir())
        self.assertEqual(rc, 5, err)
        errors = [l for l in err.splitlines() if "isoboot: error:" in l]
        self.assertEqual(len(errors), 1, err)
        self.assertIn("no second virtual media slot for the data image", errors[0])
        self.assertIn("1 slot(s): " + AMI_SLOT + " (no MediaTypes)", errors[0])
        # Nothing was inserted, nor the host touched.
        self.assertEqual(S(fake), [])
        fake.stop()

    def test_usage_errors(self):
        fake = Fake("ilo5")
        good = self.data_dir()
        out_link = self.data_dir("out-link")
        os.symlink("/etc/passwd", os.path.join(out_link, "sub", "passwd"))
        for extra, code, says in (
                (("--data", good, "--data-label", "pit-data"), 2, "--data-label: data label"),
                (("--data", good, "--data-label", "A" * 33), 2, "1 to 32 characters"),
                (("--data", out_link, "--http-address", "127.0.0.1"), 2,
                 os.path.join(out_link, "sub", "passwd") +
                 ": the symlink to /etc/passwd does not stay inside"),
                (("--data", os.path.join(TMP, "no-such-dir"), "--http-address", "127.0.0.1"), 2,
                 "no-such-dir"),
                (("--data", good, "--via", "pxe"), 2, "drop --data")):
            res = run(fake, "boot", *(extra if "pxe" in extra else ("--iso", IMG_URL) + extra))
            self.assertEqual(res[0], code, (extra, res[2]))
            self.assertIn(says, res[2], extra)
            self.assertEqual(len([l for l in res[2].splitlines() if "isoboot: error:" in l]), 1)
        res = run(fake, "status", "--data", good)
        self.assertEqual(res[0], 2, res[2])
        self.assertIn("--data goes with boot or insert", res[2])
        # The data image is served by isoboot: BMCs must be told where to reach it.
        res = run(fake, "boot", "--iso", IMG_URL, "--data", good)
        self.assertEqual(res[0], 2, res[2])
        self.assertIn("--data: pass --url-host", res[2])
        self.assertEqual(S(fake), [])
        fake.stop()


    def test_bmc_file_macs_get_node_images(self):
        """--serve with a --bmc-file whose lines carry a MAC and kernel arguments: that host
        mounts its own node image, whose boot menu has its arguments; the other the ISO."""
        tree = os.path.join(TMP, "menu-tree")
        os.makedirs(os.path.join(tree, "isolinux"), exist_ok=True)
        with open(os.path.join(tree, "isolinux", "isolinux.cfg"), "w") as f:
            f.write("label live\n  kernel /linux\n  append initrd=/initrd quiet\n")
        for name in ("linux", "initrd"):
            with open(os.path.join(tree, name), "wb") as f:
                f.write(os.urandom(5000))
        iso = os.path.join(TMP, "menu.iso")
        subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-R", "-o", iso, tree], check=True,
                       capture_output=True)
        fakes = [Fake("ilo5"), Fake("ami")]
        hosts = os.path.join(TMP, "node-hosts.txt")
        with open(hosts, "w") as f:
            f.write("%s 52:54:00:aa:bb:0c hostname=n12 ip=dhcp\n%s\n"
                    % (fakes[0].host, fakes[1].host))
        err_path = os.path.join(TMP, "node-hosts.err")
        with open(err_path, "w") as err:
            p = subprocess.Popen([BIN, "bmc", "insert", "--bmc-file", hosts, "--user", "admin",
                                  "--password-env", "BMC_PW", "--ca", CERT, "--serve", iso,
                                  "--http-address", "127.0.0.1", "--http-port", "0",
                                  "--poll-interval", "0.02", "--json"],
                                 stdout=subprocess.PIPE, stderr=err, text=True,
                                 env=dict(os.environ, BMC_PW=PASSWORD), stdin=subprocess.DEVNULL)
        procs.append(p)
        def read_err():
            with open(err_path) as f:
                return f.read()
        wait_for("serving", lambda: "until interrupted" in read_err(), p)
        images = [[b["Image"] for _, _, b in S(x) if isinstance(b, dict) and "Image" in b]
                  for x in fakes]
        self.assertTrue(images[0] and images[0][-1].endswith("/nodes/52-54-00-aa-bb-0c.iso"),
                        images)
        self.assertTrue(images[1] and images[1][-1].endswith("/live.iso"), images)
        got = os.path.join(TMP, "node-got.iso")
        with urllib.request.urlopen(images[0][-1], timeout=10) as r, open(got, "wb") as f:
            f.write(r.read())
        cfg = subprocess.run(["isoinfo", "-R", "-i", got, "-x", "/isolinux/isolinux.cfg"],
                             check=True, capture_output=True, text=True).stdout
        self.assertIn("append initrd=/initrd quiet hostname=n12 ip=dhcp\n", cfg)
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, read_err())
        results = json.loads(out)
        self.assertEqual([r["iso"] for r in results], [images[0][-1], images[1][-1]])


class EndToEnd(Base):
    def test_boot_from_isoboot_serve(self):
        """The fake BMC pulls the ISO from `isoboot serve --http-only` with Ranges."""
        iso = os.path.join(TMP, "e2e.iso")
        subprocess.run([os.path.join(SRC, "scripts/make-layout-iso.sh"), "kiwi", iso], check=True,
                       capture_output=True)
        err_path = os.path.join(TMP, "serve.err")
        with open(err_path, "w") as err:
            serve = subprocess.Popen([BIN, "serve", iso, "--http-only", "--http-address",
                                      "127.0.0.1", "--http-port", "0"],
                                     stdout=subprocess.DEVNULL, stderr=err)
        procs.append(serve)
        url = None
        for _ in range(200):
            with open(err_path) as f:
                text = f.read()
            if "the image is at " in text:
                url = text.split("the image is at ")[1].split()[0]
                break
            self.assertIsNone(serve.poll(), text)
            time.sleep(0.05)
        self.assertIsNotNone(url)
        fake = Fake("ilo5")
        self.go(fake, "boot", "--iso", url)
        fake.stop()
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=30)
        with open(iso, "rb") as f:
            data = f.read()
        fetched = fake.state()["fetched"]
        self.assertEqual([(x["range"], x["status"], x["bytes"]) for x in fetched],
                         [("bytes=0-2047", 206, 2048), ("bytes=32768-34815", 206, 2048)])
        import hashlib
        self.assertEqual([x["sha256"] for x in fetched],
                         [hashlib.sha256(data[0:2048]).hexdigest(),
                          hashlib.sha256(data[32768:34816]).hexdigest()])
        # isoboot's HTTP log counts exactly the bytes the BMC received.
        with open(err_path) as f:
            served = [l for l in f if "GET /live.iso 206" in l]
        self.assertEqual(len(served), 2, served)
        self.assertTrue(all(": 2048 of 2048 bytes" in l for l in served), served)


    def serve_boot(self, *extra, ready="until interrupted", then=None):
        """`bmc boot --serve` against a fake AMI until `ready` is on stderr, then `then(err_path,
        proc)`, then Ctrl-C."""
        iso = os.path.join(TMP, "e2e2.iso")
        if not os.path.exists(iso):
            subprocess.run([os.path.join(SRC, "scripts/make-layout-iso.sh"), "kiwi", iso],
                           check=True, capture_output=True)
        fake = Fake("ami")
        err_path = os.path.join(fake.dir, "isoboot.err")
        env = dict(os.environ, BMC_PW=PASSWORD)
        with open(err_path, "w") as err:
            p = subprocess.Popen([BIN, "bmc", "boot", "--bmc", fake.host, "--user", "admin",
                                  "--password-env", "BMC_PW", "--ca", CERT, "--serve", iso,
                                  "--http-address", "127.0.0.1", "--http-port", "0",
                                  "--poll-interval", "0.02"] + list(extra),
                                 stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        procs.append(p)
        for _ in range(600):
            with open(err_path) as f:
                if ready in f.read():
                    break
            self.assertIsNone(p.poll())
            time.sleep(0.05)
        if then:
            then(err_path, p)
        with open("/proc/%d/cmdline" % p.pid, "rb") as f:
            cmdline = f.read()
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=60)
        with open(err_path) as f:
            err = f.read()
        self.assertEqual(p.returncode, 0, err)
        self.assertIn(ready, err)
        self.check_hygiene(fake, (0, out, err, cmdline))
        fetched = fake.state()["fetched"]  # the fake's own reads, on insert
        self.assertEqual(sum(x["bytes"] for x in fetched), 4096)
        self.assertEqual(len(fetched), 2)
        self.assertTrue(S(fake)[1][2]["Image"].endswith("/live.iso"))
        return fake, out, err

    def test_boot_with_serve_shows_bytes_pulled(self):
        """`bmc boot --serve`: isoboot serves the ISO itself and shows what each BMC pulled."""
        fake, out, _ = self.serve_boot("--json")
        j = json.loads(out)
        # What the fake BMC received: 4096 bytes in two Range requests.
        self.assertEqual((j["bytes_pulled"], j["requests"], j["via"]), (4096, 2, "cd"))

    def test_serve_progress_line(self):
        """The progress line shows the bytes and the requests, and keeps counting while serving
        after the boot."""
        def read_more(err_path, proc):
            # One more Range read from the BMC's address (127.0.0.1) once the host is up.
            with open(err_path) as f:
                url = f.read().split(" until interrupted")[0].rsplit(" at ", 1)[1]
            req = urllib.request.Request(url, headers={"Range": "bytes=0-999"})
            with urllib.request.urlopen(req, timeout=5) as r:
                self.assertEqual(len(r.read()), 1000)

            def counted():
                with open(err_path) as f:
                    return ": serving (5096 bytes pulled in 3 requests" in f.read()
            wait_for("count of the new read on the progress line", counted, proc)  # within ~10 s

        fake, out, err = self.serve_boot(ready=": serving (4096 bytes pulled in 2 requests",
                                         then=read_more)
        self.assertEqual(out, "%s: booting via cd (AMI MegaRAC)\n" % fake.host)
        self.assertIn(fake.host + ": connecting (0 bytes pulled in 0 requests)", err)


def start(fake, action, *extra, err_path):
    """Starts `isoboot bmc ACTION` against `fake` with stderr to err_path."""
    args = [BIN, "--log-level", "trace", "bmc", action, "--bmc", fake.host, "--user", "admin",
            "--password-env", "BMC_PW", "--ca", CERT, "--poll-interval", "0.05"] + list(extra)
    with open(err_path, "w") as err:
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True,
                             env=dict(os.environ, BMC_PW=PASSWORD), stdin=subprocess.DEVNULL)
    procs.append(p)
    return p


def wait_for(what, check, proc):
    for _ in range(600):  # bounded: 30 s
        if check():
            return
        assert proc.poll() is None, "isoboot exited (%s) before %s" % (proc.returncode, what)
        time.sleep(0.05)
    raise AssertionError("no " + what)


class Interrupt(Base):
    """Ctrl-C or SIGTERM during `bmc boot`: exit 1 ("interrupted"), the session deleted."""

    def interrupt(self, sig, fake, ready):
        err_path = os.path.join(fake.dir, "isoboot.err")
        p = start(fake, "boot", "--iso", IMG_URL, "--mount-timeout", "600", err_path=err_path)
        wait_for("sign of the step to interrupt", ready(err_path), p)
        with open("/proc/%d/cmdline" % p.pid, "rb") as f:
            cmdline = f.read()
        sent = time.monotonic()
        p.send_signal(sig)
        out, _ = p.communicate(timeout=30)
        # Well below the 30 s request time-out: a hanging request is aborted.
        self.assertLess(time.monotonic() - sent, 10)
        with open(err_path) as f:
            err = f.read()
        self.assertEqual(p.returncode, 1, err)
        self.assertIn("isoboot: error: interrupted", err)
        self.check_hygiene(fake, (p.returncode, out, err, cmdline))
        self.assertFalse(any("Reset" in path for _, path, _ in S(fake)))
        fake.stop()

    def polling(self, err_path):
        def check():
            with open(err_path) as f:
                return "waiting for the BMC to mount" in f.read()
        return check

    def test_sigint_while_polling(self):
        self.interrupt(signal.SIGINT, Fake("ilo5", "--never-mount"), self.polling)

    def test_sigterm_while_polling(self):
        self.interrupt(signal.SIGTERM, Fake("ilo5", "--never-mount"), self.polling)

    def test_sigterm_during_a_request(self):
        fake = Fake("ilo5", "--hang-on", R + "/Managers/1/VirtualMedia")
        self.interrupt(signal.SIGTERM, fake,
                       lambda _: lambda: os.path.exists(fake.log + ".hanging"))


class Console(Base):
    def fake_ipmitool(self, fail_c17, hang=False):
        d = tempfile.mkdtemp(dir=TMP)
        rec = os.path.join(d, "calls")
        with open(os.path.join(d, "ipmitool"), "w") as f:
            f.write("#!/bin/sh\n"
                    "echo \"$* pw=$([ \"$IPMI_PASSWORD\" = \"$EXPECT_PW\" ] && echo ok)\" >> %s\n"
                    # The shell's own masks, read by builtins: while it waits for
                    # a child (grep) dash blocks every signal.
                    "while read -r k v; do case $k in SigBlk:|SigIgn:) echo $k$v;; esac;"
                    " done < /proc/$$/status >> %s.signals\n"
                    "case \"$*\" in *'-C 17 sol activate'*) %s exit %d;; esac\nexit 0\n"
                    % (rec, rec, "exec sleep 60;" if hang else "", 1 if fail_c17 else 0))
        os.chmod(os.path.join(d, "ipmitool"), 0o755)
        return d, rec

    def check_signals(self, rec):
        """Every ipmitool runs with the signal mask isoboot started with (ours: Ctrl-C
        reaches it, though isoboot blocks SIGINT for its signal thread) and SIGPIPE
        not ignored (isoboot ignores it)."""
        with open("/proc/self/status") as f:
            ours = dict(l.split(":", 1) for l in f.read().splitlines())
        with open(rec + ".signals") as f:
            lines = [l.split(":") for l in f.read().splitlines()]
        self.assertTrue(lines)
        for k, v in lines:
            if k == "SigBlk":
                self.assertEqual(int(v, 16), int(ours["SigBlk"], 16))
            else:
                self.assertEqual(int(v, 16) & (1 << (signal.SIGPIPE - 1)), 0)

    def test_boot_then_console(self):
        d, rec = self.fake_ipmitool(False)
        fake = Fake("dmtf")
        self.go(fake, "boot", "--iso", IMG_URL, "--console",
                env_extra={"PATH": d + ":" + os.environ["PATH"], "EXPECT_PW": PASSWORD})
        with open(rec) as f:
            calls = f.read().splitlines()
        self.assertEqual(calls, [
            "-I lanplus -H 127.0.0.1 -U admin -E -C 17 sol deactivate pw=ok",
            "-I lanplus -H 127.0.0.1 -U admin -E -C 17 sol activate pw=ok"])
        self.check_signals(rec)

    def test_console_falls_back_to_cipher_3(self):
        d, rec = self.fake_ipmitool(True)
        res = run("127.0.0.1:1", "console",
                  env_extra={"PATH": d + ":" + os.environ["PATH"], "EXPECT_PW": PASSWORD})
        self.assertEqual(res[0], 0, res[2])
        self.assertNotIn(PASSWORD.encode(), res[3])
        with open(rec) as f:
            calls = [c.split(" sol ")[0][-4:] + " " + c.split(" sol ")[1] for c in f.read().splitlines()]
        self.assertEqual(calls, ["C 17 deactivate pw=ok", "C 17 activate pw=ok",
                                 "-C 3 deactivate pw=ok", "-C 3 activate pw=ok"])
        self.check_signals(rec)

    def test_sigterm_ends_the_console(self):
        """SIGTERM to isoboot alone reaches ipmitool, and no fallback starts after it."""
        d, rec = self.fake_ipmitool(False, hang=True)
        env = dict(os.environ, BMC_PW=PASSWORD, EXPECT_PW=PASSWORD,
                   PATH=d + ":" + os.environ["PATH"])
        p = subprocess.Popen([BIN, "bmc", "console", "--bmc", "127.0.0.1:1", "--user", "admin",
                              "--password-env", "BMC_PW"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, stdin=subprocess.DEVNULL)
        procs.append(p)

        def activated():
            if not os.path.exists(rec):
                return False
            with open(rec) as f:
                return "sol activate" in f.read()
        # Whether the shell has exec'd sleep yet or not, SIGTERM ends it.
        wait_for("sol activate", activated, p)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 11, err)  # the console failed: ipmitool was killed
        with open(rec) as f:
            self.assertEqual(len(f.read().splitlines()), 2)  # no cipher 3 fallback


if __name__ == "__main__":
    unittest.main(verbosity=2)
