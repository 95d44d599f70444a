#!/usr/bin/env python3
"""A stateful fake Redfish BMC for isoboot's tests (stdlib only).

Serves a mockup tree from /work/shared/redfish-mockups-style folders over
HTTPS on 127.0.0.1 and behaves like the vendor it imitates: sessions with a
limit, Basic auth, InsertMedia/EjectMedia/Reset actions that change state,
PATCH with ETags (412 without If-Match where the vendor needs it), 202 task
monitors, the vendor error bodies (sushy samples), and failure modes: a BMC
that accepts the insert but never mounts, one that never powers on, a slow
one. On insert it really fetches the image URL with Range requests, as a BMC
does. Every request is appended to --log as one JSON line.

With --vm-dir the host behind the BMC is a real QEMU VM, as sushy-tools drives
libvirt: PowerState is whether the VM runs; Reset On starts it, ForceRestart
restarts it, ForceOff stops it (by the PID this process started). The
inserted Image is the VM's CD, read by QEMU's HTTP block driver (Debian's
qemu-block-extra) with Range requests, as a BMC's virtual CD reads it. The
VM boots that CD only after a CD boot override (Boot Once or Continuous with
target Cd/UsbCd, or iLO's BootOnNextServerReset on the slot; Once and
BootOnNextServerReset are consumed by the power-on); otherwise its firmware
tries only a blank disk (-boot strict=on) and says "No bootable device", so a
flow that forgets the override fails visibly. The second slot (iLO 5's
Floppy/USBStick slot 1, the DMTF tree's Floppy1, iDRAC's RemovableDisk; the
AMI tree has only its CD) holds a data image: when the VM starts with one
inserted there, it is a USB stick on an xHCI controller (usb-storage), read
through QEMU's HTTP block driver from the URL the client gave, and never
booted from. Its serial console is appended
to VM_DIR/console.log; VM_DIR/vm.log lists each power-on.

With --vm-ipmi the VM also has a real IPMI BMC, OpenIPMI's ipmi_sim (started
here, stopped on exit): QEMU's ipmi-bmc-extern device (an isa-ipmi-kcs
interface for the guest) connects to it over a socket, and it serves IPMI
over LAN (lanplus) on --ipmi-address:623 with the same user and password,
with Serial-over-LAN on the VM's serial port: ipmi_sim connects to this
process, which relays to the serial port of whichever QEMU runs (a TCP
socket it listens on), as a BMC's SOL stays wired to its host's UART across
power cycles; console.log still gets every byte. With --vm-user-net the VM has a NIC on QEMU's user network: the
guest's 10.0.2.2 is this process's 127.0.0.1, so a live system can reach
servers the test runs on loopback, and nothing else. With --vm-tap TAP its
NIC is on that tap instead; either NIC has the MAC --vm-mac. With --vm-tap a one-time Pxe override
(Boot Once/Continuous, target Pxe) boots the VM from it: its firmware's PXE
(iPXE's ROM on SeaBIOS, OVMF's own) asks whatever DHCP server is on the tap's
network. VM_DIR/vm.log records "from_net".
"""
import argparse, base64, hashlib, copy, http.server, json, os, shutil, signal, ssl, subprocess, sys
import select, socket, threading, time, urllib.request, uuid

P = argparse.ArgumentParser()
P.add_argument("--mockups", required=True)
P.add_argument("--profile", required=True,
               choices=["ilo5", "ilo5-early", "ami", "dmtf", "idrac", "supermicro", "openbmc"])
P.add_argument("--cert", required=True)
P.add_argument("--key", required=True)
P.add_argument("--port-file", required=True)
P.add_argument("--log", required=True)
P.add_argument("--user", default="admin")
P.add_argument("--password", help="the BMC password (or --password-env)")
P.add_argument("--password-env", help="read the BMC password from this variable (not in argv)")
P.add_argument("--session-limit", type=int, default=4)
P.add_argument("--never-mount", action="store_true")
P.add_argument("--never-power-on", action="store_true",
               help="the host never powers on; a restarted host goes Off and stays Off")
P.add_argument("--restart-shows", choices=["power", "progress", "nothing"], default="power",
               help="what a restart of a host that is On shows: PowerState Off for a moment "
               "and a new boot in BootProgress/PostState (power), the new boot alone "
               "(progress), or nothing at all")
P.add_argument("--slow-mount", type=int, default=0, help="slot GETs before Inserted turns true")
P.add_argument("--task-202", action="store_true", help="answer actions with 202 + task monitor")
P.add_argument("--task-polls", type=int, default=2)
P.add_argument("--post-busy", type=int, default=0, help="refuse Boot PATCH N times (iLO POST)")
P.add_argument("--power", choices=["On", "Off"])
P.add_argument("--preinserted", default="")
P.add_argument("--requires", default=None, help="comma list of InsertMedia fields to demand")
P.add_argument("--expire-after", type=int, default=0, help="sessions expire after N requests")
P.add_argument("--stale-etag", action="store_true", help="the ETag changes before the 1st PATCH")
P.add_argument("--http-only-nfs", action="store_true", help="refuse HTTP TransferProtocolType")
P.add_argument("--boot-targets", default=None,
               help="comma list: the system's BootSourceOverrideTarget@Redfish.AllowableValues")
P.add_argument("--hang-on", default="", help="hold the first GET of this path for 30 s "
               "(touches LOG.hanging when it starts)")
P.add_argument("--second-cd", action="store_true",
               help="dmtf: its Floppy1 slot lists MediaTypes CD instead (a second CD slot)")
P.add_argument("--vm-dir", default="", help="drive a real QEMU VM (see above) kept in this dir")
P.add_argument("--vm-firmware", choices=["bios", "uefi"], default="bios",
               help="SeaBIOS (-machine pc) or OVMF (-machine q35)")
P.add_argument("--vm-ipmi", action="store_true", help="an ipmi_sim BMC with SOL for the VM")
P.add_argument("--ipmi-address", default="127.0.0.1", help="with --vm-ipmi: IPMI LAN address")
P.add_argument("--vm-user-net", action="store_true", help="a NIC on QEMU's user network")
P.add_argument("--vm-tap", default="", help="a NIC on this tap, PXE-bootable with a Pxe override")
P.add_argument("--vm-mac", default="52:54:00:13:00:01",
               help="the MAC of the NIC of --vm-tap or --vm-user-net")
P.add_argument("--vm-accel", default="tcg")
P.add_argument("--vm-mem", default="512")
A = P.parse_args()
if A.password_env:
    A.password = os.environ.get(A.password_env)
if not A.password:
    P.error("--password or --password-env (a variable that is set) is required")
SAMPLES = os.path.join(A.mockups, "sushy-samples")
R = "/redfish/v1"
lock = threading.RLock()
hung = []  # --hang-on: the paths held so far
tree, meta = {}, {}  # path -> resource; path -> {"etag": int, "allow": str}


def norm(p):
    p = p.split("?")[0]
    return p[:-1] if len(p) > 1 and p.endswith("/") else p


def load(folder):
    base = os.path.join(A.mockups, folder)
    for d, _, files in os.walk(base):
        if "index.json" in files:
            rel = os.path.relpath(d, base)
            path = R if rel == "." else R + "/" + rel
            with open(os.path.join(d, "index.json")) as f:
                tree[norm(path)] = json.load(f)


def sample(name):
    with open(os.path.join(SAMPLES, name)) as f:
        return json.load(f)


def err(code, message_id, message, related=None):
    m = {"MessageId": message_id, "Message": message, "Severity": "Critical"}
    if related:
        m["RelatedProperties"] = ["#/" + related]
    return {"error": {"code": message_id, "message": message, "@Message.ExtendedInfo": [m]}}


def collection(path, members):
    tree[path] = {"@odata.id": path, "Members": [{"@odata.id": m} for m in members],
                  "Members@odata.count": len(members), "Name": "collection"}


def std_actions(slot):
    return {"#VirtualMedia.InsertMedia": {"target": slot + "/Actions/VirtualMedia.InsertMedia"},
            "#VirtualMedia.EjectMedia": {"target": slot + "/Actions/VirtualMedia.EjectMedia"}}


# ---- per-vendor setup ---------------------------------------------------------------
prof = A.profile
cfg = {"requires": [], "if_match": set(), "lower_headers": False, "eject_empty_error": False,
       "reject_inserted": False, "sessions": R + "/SessionService/Sessions"}
if prof in ("ilo5", "ilo5-early"):
    load("hpe-ilo5-dl325")
    cfg.update(lower_headers=True, eject_empty_error=True)
    if prof == "ilo5-early":
        load("hpe-ilo5-early-fw-vmedia")
        meta[R + "/Managers/1/VirtualMedia/2"] = {"allow": "GET, HEAD"}
    system, slot = R + "/Systems/1", R + "/Managers/1/VirtualMedia/2"
elif prof == "ami":
    load("ami-megarac-gigabyte")
    cfg.update(requires=["TransferProtocolType"], if_match={R + "/Systems/Self"})
    system, slot = R + "/Systems/Self", R + "/Managers/Self/VirtualMedia/CD1"
    tree[slot]["Oem"] = {"Ami": {"RedirectionStatus": "Redirection Stopped"}}
elif prof in ("dmtf", "supermicro"):
    load("dmtf-public-rackmount1")
    system, slot = R + "/Systems/437XR1138R2", R + "/Systems/437XR1138R2/VirtualMedia/CD1"
    meta[slot] = {"allow": "GET, PATCH"}
    if prof == "supermicro":
        tree[R]["Vendor"] = "Supermicro"
        tree[R]["Oem"] = {"Supermicro": {}}
        tree[slot]["Actions"] = std_actions(slot)
        meta[slot] = {"allow": "GET"}
        b = tree[system]["Boot"]
        b["BootSourceOverrideTarget@Redfish.AllowableValues"].append("UsbCd")
        b["BootSourceOverrideEnabled"] = "Disabled"
        cfg.update(requires=["TransferMethod"], reject_inserted=True)
elif prof == "idrac":
    load("idrac9-r640-partial")
    system = R + "/Systems/System.Embedded.1"
    collection(R + "/Systems", [system])
    vm = R + "/Managers/iDRAC.Embedded.1/VirtualMedia"
    collection(vm, [vm + "/RemovableDisk", vm + "/CD"])
    for name, types in (("RemovableDisk", ["USBStick"]), ("CD", ["CD", "DVD"])):
        tree[vm + "/" + name] = {"@odata.id": vm + "/" + name, "Id": name, "Name": "Virtual " + name,
                                 "MediaTypes": types, "Image": None, "Inserted": False,
                                 "ConnectedVia": "NotConnected", "WriteProtected": True,
                                 "Actions": std_actions(vm + "/" + name)}
    slot = vm + "/CD"
    cfg["sessions"] = tree[R]["Links"]["Sessions"]["@odata.id"]
elif prof == "openbmc":
    load("openbmc-stock")
    system, slot = R + "/Systems/system", None
    tree.setdefault(R + "/Systems/system/ResetActionInfo", {
        "@odata.id": R + "/Systems/system/ResetActionInfo",
        "Parameters": [{"Name": "ResetType", "AllowableValues": ["On", "ForceOff", "ForceRestart",
                                                                 "GracefulRestart", "PowerCycle"]}]})
# The second slot, for a data image (None: the tree has none the client finds).
data_slot = {"ilo5": R + "/Managers/1/VirtualMedia/1",
             "dmtf": R + "/Systems/437XR1138R2/VirtualMedia/Floppy1",
             "supermicro": R + "/Systems/437XR1138R2/VirtualMedia/Floppy1",
             "idrac": R + "/Managers/iDRAC.Embedded.1/VirtualMedia/RemovableDisk"}.get(prof)
if prof in ("dmtf", "supermicro"):
    meta[data_slot] = dict(meta[slot])
    if prof == "supermicro":
        tree[data_slot]["Actions"] = std_actions(data_slot)
    if A.second_cd:
        tree[data_slot]["MediaTypes"] = ["CD"]
slots = [x for x in (slot, data_slot) if x]
if A.requires is not None:
    cfg["requires"] = [x for x in A.requires.split(",") if x]
if A.power:
    tree[system]["PowerState"] = A.power
if A.boot_targets is not None:
    tree[system]["Boot"]["BootSourceOverrideTarget@Redfish.AllowableValues"] = \
        [x for x in A.boot_targets.split(",") if x]
if slot and A.preinserted:
    tree[slot].update(Image=A.preinserted, Inserted=True, ConnectedVia="URI")
collection(cfg["sessions"], [])

# action target -> (owner path, action name)
targets = {}
for path, res in list(tree.items()):
    acts = dict(res.get("Actions", {}) or {})
    acts.update((res.get("Actions", {}) or {}).get("Oem", {}) or {})
    for o in (res.get("Oem") or {}).values():
        if isinstance(o, dict):
            acts.update(o.get("Actions", {}) or {})
    for name, a in acts.items():
        if isinstance(a, dict) and "target" in a:
            targets[norm(a["target"])] = (path, name)

sessions = {}  # token -> session path
state = {"pending": {}, "post_busy": A.post_busy, "tasks": {}}  # pending: slot -> GETs to mount


class Vm:
    """The host behind the BMC with --vm-dir: one QEMU process at a time."""

    def __init__(self, d):
        self.dir, self.proc = d, None
        os.makedirs(d, exist_ok=True)
        self.blank = os.path.join(d, "blank.img")
        with open(self.blank, "wb") as f:
            f.truncate(1 << 20)
        if A.vm_firmware == "uefi":
            shutil.copy("/usr/share/OVMF/OVMF_VARS_4M.fd", os.path.join(d, "OVMF_VARS.fd"))
        self.ipmi_sim = None
        if A.vm_ipmi:
            self.start_ipmi_sim()

    def start_ipmi_sim(self):
        """ipmi_sim for the VM: its VM port for QEMU's ipmi-bmc-extern, and SOL
        connecting to the port QEMU's serial port listens on."""
        self.vm_port, self.sol_port, self.serial_port = free_port(), free_port(), free_port()
        self.relayed_pid = None  # the QEMU whose serial port the relay is connected to
        threading.Thread(target=self.sol_relay, daemon=True).start()
        conf = os.path.join(self.dir, "ipmi-lan.conf")
        # Quoted fields of lan.conf cannot hold a quote; IPMI 2.0 passwords
        # are at most 20 bytes.
        if '"' in A.password + A.user or len(A.password) > 20:
            sys.exit("--vm-ipmi: the password must be at most 20 bytes, without quotes")
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write('name "isobootvm"\n'
                    "set_working_mc 0x20\n"
                    "  startlan 1\n"
                    "    addr %s 623\n"
                    "    priv_limit admin\n"
                    "    allowed_auths_admin none md2 md5 straight\n"
                    "    guid a123456789abcdefa123456789abcdef\n"
                    "  endlan\n"
                    "  serial 15 127.0.0.1 %d codec VM\n"
                    '  sol "tcp:127.0.0.1:%d" 115200\n'
                    '  user 2 true "%s" "%s" admin 10 none md2 md5 straight\n'
                    % (A.ipmi_address, self.vm_port, self.sol_port, A.user, A.password))
        emu = os.path.join(self.dir, "ipmi-sim.emu")
        with open(emu, "w") as f:
            f.write("mc_setbmc 0x20\n"
                    "mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\n"
                    "mc_enable 0x20\n")
        state_dir = os.path.join(self.dir, "ipmi-state")
        os.makedirs(state_dir, exist_ok=True)
        self.ipmi_sim = subprocess.Popen(["ipmi_sim", "-n", "-c", conf, "-f", emu, "-s", state_dir],
                                         stdin=subprocess.DEVNULL, preexec_fn=die_with_parent,
                                         stdout=open(os.path.join(self.dir, "ipmi_sim.out"), "a"),
                                         stderr=subprocess.STDOUT)
        # Up when it takes IPMI on UDP 623 (bounded: 10 s).
        for _ in range(100):
            if self.ipmi_sim.poll() is not None:
                sys.exit("ipmi_sim exited: see " + os.path.join(self.dir, "ipmi_sim.out"))
            if udp_port_bound(A.ipmi_address, 623):
                return
            time.sleep(0.1)
        self.close()
        sys.exit("ipmi_sim did not bind %s:623" % A.ipmi_address)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def sol_relay(self):
        """ipmi_sim's SOL connection (accepted on sol_port, kept across VM
        restarts) <-> the running QEMU's serial port (serial_port, connected
        again after each start). Output nobody reads over SOL is dropped;
        QEMU's logfile has it."""
        lst = socket.socket()
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind(("127.0.0.1", self.sol_port))
        lst.listen(1)
        bmc = vm_conn = None
        while True:
            proc = self.proc
            if vm_conn is None and proc is not None and proc.poll() is None:
                try:
                    vm_conn = socket.create_connection(("127.0.0.1", self.serial_port), timeout=0.2)
                    vm_conn.settimeout(None)
                    self.relayed_pid = proc.pid
                except OSError:
                    vm_conn = None
            ready, _, _ = select.select([x for x in (lst, bmc, vm_conn) if x], [], [], 0.2)
            if lst in ready:
                if bmc:
                    bmc.close()
                bmc, _ = lst.accept()
                bmc.setblocking(False)
            if vm_conn is not None and vm_conn in ready:
                try:
                    data = vm_conn.recv(4096)
                except OSError:  # reset: that QEMU was stopped
                    data = b""
                if not data:
                    vm_conn.close()
                    vm_conn, self.relayed_pid = None, None
                elif bmc:
                    try:
                        bmc.send(data)  # what does not fit is dropped: the UART never waits
                    except BlockingIOError:
                        pass
                    except OSError:
                        bmc.close()
                        bmc = None
            if bmc is not None and bmc in ready:
                try:
                    data = bmc.recv(4096)
                except BlockingIOError:
                    data = None
                except OSError:
                    data = b""
                if data == b"":
                    bmc.close()
                    bmc = None
                elif data and vm_conn:
                    try:
                        vm_conn.sendall(data)
                    except OSError:
                        pass

    def close(self):
        """Stops the VM and ipmi_sim (by the PIDs this process started)."""
        self.stop()
        if self.ipmi_sim is not None and self.ipmi_sim.poll() is None:
            self.ipmi_sim.terminate()
            try:
                self.ipmi_sim.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.ipmi_sim.kill()
                self.ipmi_sim.wait()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def start(self, image, from_cd, from_net=False, data=None):
        # -nographic, not -display none: with -display none SeaBIOS printed
        # nothing on the serial port here (no "No bootable device" to see).
        console = os.path.join(self.dir, "console.log")
        if A.vm_ipmi:
            # The serial port listens for ipmi_sim's SOL; the log gets every
            # byte, connected or not.
            con = ["-chardev", "socket,id=con,host=127.0.0.1,port=%d,server=on,wait=off,"
                               "logfile=%s,logappend=on" % (self.serial_port, console),
                   "-chardev", "socket,id=ipmi0,host=127.0.0.1,port=%d,reconnect=1" % self.vm_port,
                   "-device", "ipmi-bmc-extern,chardev=ipmi0,id=bmc0",
                   "-device", "isa-ipmi-kcs,bmc=bmc0"]
        else:
            con = ["-chardev", "file,id=con,append=on,path=" + console]
        args = ["qemu-system-x86_64", "-nodefaults", "-nographic", "-no-reboot",
                "-m", A.vm_mem, "-smp", "1", "-accel", A.vm_accel, "-boot", "strict=on"] + con + [
                "-serial", "chardev:con",
                "-drive", "if=none,id=hd0,format=raw,file=" + self.blank,
                "-device", "ide-hd,drive=hd0,bus=ide.0,bootindex=%d" % (1 if from_cd or from_net else 0)]
        if A.vm_firmware == "uefi":
            args += ["-machine", "q35",
                     "-drive", "if=pflash,format=raw,unit=0,readonly=on,"
                               "file=/usr/share/OVMF/OVMF_CODE_4M.fd",
                     "-drive", "if=pflash,format=raw,unit=1,file=" +
                               os.path.join(self.dir, "OVMF_VARS.fd")]
        else:
            args += ["-machine", "pc"]
        if A.vm_tap:
            args += ["-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % A.vm_tap,
                     "-device", "virtio-net-pci,netdev=n0,mac=%s%s"
                     % (A.vm_mac, ",bootindex=0" if from_net else "")]
        elif A.vm_user_net:
            args += ["-netdev", "user,id=n0", "-device", "e1000,netdev=n0,romfile=,mac=" + A.vm_mac]
        if image:
            # QEMU's option syntax doubles commas inside a value.
            args += ["-drive", "if=none,id=cd0,file.driver=http,format=raw,media=cdrom,"
                               "readonly=on,file.url=" + image.replace(",", ",,"),
                     "-device", "ide-cd,drive=cd0,bus=ide.1" + (",bootindex=0" if from_cd else "")]
        if data:
            # The data slot's image as a USB stick (no bootindex: never booted from).
            args += ["-device", "qemu-xhci,id=xhci",
                     "-drive", "if=none,id=data0,file.driver=http,format=raw,readonly=on,"
                               "file.url=" + data.replace(",", ",,"),
                     "-device", "usb-storage,bus=xhci.0,drive=data0,removable=on"]
        with open(os.path.join(self.dir, "vm.log"), "a") as f:
            f.write(json.dumps({"time": time.time(), "image": image, "from_cd": from_cd,
                                "from_net": from_net, "data": data, "args": args}) + "\n")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=open(os.path.join(self.dir, "qemu.out"), "a"),
                                     stderr=subprocess.STDOUT)
        if A.vm_ipmi:
            # The power is On (this request answered) only once the SOL relay
            # is connected to this QEMU's serial port and its IPMI device to
            # ipmi_sim: a SOL session started before the IPMI device was
            # connected stalled the guest here. Bounded: 30 s.
            for _ in range(300):
                if self.proc.poll() is not None or (
                        self.relayed_pid == self.proc.pid and tcp_state(self.vm_port, "01")):
                    break
                time.sleep(0.1)


def die_with_parent():
    """In a child before exec: SIGTERM when the thread that started it ends
    (for ipmi_sim, started by the main thread: when this process dies, however
    it dies). Not for QEMU: the request threads that start it end at once."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tcp_state(port, state):
    """Whether a TCP socket in this network namespace with local PORT is in
    STATE (/proc/net/tcp's hex code: "0A" listening, "01" established)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == state and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        return True
        except FileNotFoundError:
            pass
    return False


def udp_port_bound(address, port):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((address, port))
        except OSError:
            return True
        return False


vm = Vm(A.vm_dir) if A.vm_dir else None


def vm_power(owner, reset_type):
    """Reset with --vm-dir: stops and/or starts the VM; honours and consumes the boot override."""
    sysres = tree[owner]
    if reset_type in ("ForceOff", "GracefulShutdown", "ForceRestart", "GracefulRestart",
                      "PowerCycle"):
        vm.stop()
    if reset_type in ("ForceOff", "GracefulShutdown") or A.never_power_on or vm.running():
        return
    boot = sysres.get("Boot", {})
    hpe = (tree[slot].get("Oem") or {}).get("Hpe", {}) if slot else {}
    override = boot.get("BootSourceOverrideEnabled") in ("Once", "Continuous") and \
        boot.get("BootSourceOverrideTarget") in ("Cd", "UsbCd")
    from_cd = override or bool(hpe.get("BootOnNextServerReset"))
    from_net = boot.get("BootSourceOverrideEnabled") in ("Once", "Continuous") and \
        boot.get("BootSourceOverrideTarget") == "Pxe"
    image = tree[slot].get("Image") if slot and tree[slot].get("Inserted") else None
    data = tree[data_slot].get("Image") if data_slot and tree[data_slot].get("Inserted") else None
    if boot.get("BootSourceOverrideEnabled") == "Once":
        boot["BootSourceOverrideEnabled"] = "Disabled"
    if hpe.get("BootOnNextServerReset"):
        hpe["BootOnNextServerReset"] = False
    vm.start(image, from_cd and not from_net, from_net, data)


def vm_watch():
    """PowerState follows the VM (a guest that powers itself off is Off)."""
    while True:
        with lock:
            tree[system]["PowerState"] = "On" if vm.running() else "Off"
        time.sleep(0.2)


def etag(path):
    m = meta.setdefault(path, {})
    return 'W/"%08X"' % (m.get("etag", 0x1000) + (hash(path) & 0xFFFF))


def bump(path):
    m = meta.setdefault(path, {})
    m["etag"] = m.get("etag", 0x1000) + 1


def fetch_image(url):
    """Reads the image's first sectors and its volume descriptor, as a BMC would."""
    got = 0
    for rng in ("bytes=0-2047", "bytes=32768-34815"):
        req = urllib.request.Request(url, headers={"Range": rng, "User-Agent": "fake-bmc"})
        with urllib.request.urlopen(req, timeout=5) as r:
            data = r.read()
            got += len(data)
            state.setdefault("fetched", []).append(
                {"url": url, "range": rng, "status": r.status, "bytes": len(data),
                 "sha256": hashlib.sha256(data).hexdigest()})
    return got > 0


def mount(url, body, path=None):
    path = path or slot
    s = tree[path]
    s.update(Image=url, ImageName=url.rsplit("/", 1)[-1])
    ok = False
    if not A.never_mount:
        try:
            ok = fetch_image(url)
        except Exception:
            ok = False
    if ok and A.slow_mount:
        state["pending"][path] = A.slow_mount
        ok = False
    s.update(Inserted=ok, ConnectedVia="URI" if ok else "NotConnected")
    if prof == "ami" and ok:
        s["Oem"]["Ami"]["RedirectionStatus"] = "Redirection Started With Media Boost"
    bump(path)


def eject(path=None):
    path = path or slot
    s = tree[path]
    s.update(Image=None if prof != "ami" else "None", Inserted=False, ConnectedVia="NotConnected")
    if prof == "ami":
        s["Oem"]["Ami"]["RedirectionStatus"] = "Redirection Stopped"
    bump(path)


def allowed_resets(owner):
    a = tree[owner]["Actions"]["#ComputerSystem.Reset"]
    if "ResetType@Redfish.AllowableValues" in a:
        return a["ResetType@Redfish.AllowableValues"]
    info = tree.get(norm(a.get("@Redfish.ActionInfo", "")), {})
    for p in info.get("Parameters", []):
        if p.get("Name") == "ResetType":
            return p["AllowableValues"]
    return []


def boot_progress(sysres):
    """A new boot as the BMC reports it: BootProgress (DMTF, OpenBMC) starts
    again, iLO's Oem.Hpe.PostState goes InPost."""
    if "BootProgress" in sysres:
        state["boots"] = state.get("boots", 0) + 1
        sysres["BootProgress"]["LastState"] = "PrimaryProcessorInitializationStarted"
        sysres["BootProgress"]["LastStateTime"] = "2026-12-04T10:%02d:00+00:00" % (
            state["boots"] % 60)
    hpe = (sysres.get("Oem") or {}).get("Hpe")
    if hpe and "PostState" in hpe:
        hpe["PostState"] = "InPost"


def do_action(owner, name, body):
    """Returns (status, body) and changes state."""
    media = owner if owner in slots else slot  # the slot a media action is on
    if name.endswith("InsertMedia") or name.endswith("InsertVirtualMedia"):
        if "Image" not in body:
            return 400, err(400, "Base.1.12.ActionParameterMissing", "Image is required", "Image")
        if cfg["reject_inserted"] and ("Inserted" in body or "WriteProtected" in body):
            bad = "Inserted" if "Inserted" in body else "WriteProtected"
            return 400, err(400, "Base.1.12.PropertyUnknown",
                            "The property %s is not in the list of valid properties" % bad, bad)
        if name.endswith("InsertMedia"):
            for field in cfg["requires"]:
                if field not in body:
                    return 400, {"TransferProtocolType": sample("transfer_proto_required_error.json"),
                                 "TransferMethod": sample("transfer_method_required_error.json"),
                                 "UserName": sample("credentials_required_error.json")}[field]
            if A.http_only_nfs and body.get("TransferProtocolType") in ("HTTP", "HTTPS"):
                return 400, err(400, "Base.1.12.ActionParameterValueNotInList",
                                "The value HTTP for TransferProtocolType is not in the list of "
                                "acceptable values", "TransferProtocolType")
        mount(body["Image"], body, media)
        return 204, None
    if name.endswith("EjectMedia") or name.endswith("EjectVirtualMedia"):
        if not tree[media].get("Inserted") and cfg["eject_empty_error"]:
            return 400, {"error": {"code": "iLO.0.10.ExtendedInfo",
                                   "message": "See @Message.ExtendedInfo for more information.",
                                   "@Message.ExtendedInfo": [
                                       {"MessageId": "iLO.2.14.UnableToEjectMedia"}]}}
        eject(media)
        return 204, None
    if name == "#ComputerSystem.Reset":
        t = body.get("ResetType")
        if t not in allowed_resets(owner):
            return 400, err(400, "Base.1.12.ActionParameterValueNotInList",
                            "The value %s for ResetType is not allowed" % t, "ResetType")
        sysres = tree[owner]
        if vm:
            if sysres.get("Boot", {}).get("BootSourceOverrideEnabled") == "Once" and \
                    t not in ("ForceOff", "GracefulShutdown"):
                state["booted_from"] = sysres["Boot"]["BootSourceOverrideTarget"]
            vm_power(owner, t)
            sysres["PowerState"] = "On" if vm.running() else "Off"
            if vm.running():
                boot_progress(sysres)
            bump(owner)
            return 204, None
        if t in ("On", "ForceOn") and not A.never_power_on:
            sysres["PowerState"] = "On"
            boot_progress(sysres)
        if t in ("ForceOff", "GracefulShutdown"):
            sysres["PowerState"] = "Off"
        if t in ("ForceRestart", "GracefulRestart", "PowerCycle"):
            # As a real host: down for a moment (the next two GETs of the
            # system), then up again and through POST, unless it never
            # powers on again.
            if A.restart_shows == "power" or A.never_power_on:
                sysres["PowerState"] = "Off"
                state["restart_countdown"] = 2
            if A.restart_shows != "nothing" and not A.never_power_on:
                boot_progress(sysres)
        if sysres.get("Boot", {}).get("BootSourceOverrideEnabled") == "Once" and \
                t not in ("ForceOff", "GracefulShutdown") and not A.never_power_on:
            state["booted_from"] = sysres["Boot"]["BootSourceOverrideTarget"]
        bump(owner)
        return 204, None
    if name.endswith("ImportSystemConfiguration"):
        if "VCD-DVD" not in body.get("ImportBuffer", "") or "ShareParameters" not in body:
            return 400, err(400, "Base.1.12.PropertyMissing", "bad import", "ImportBuffer")
        return start_task(lambda: None, dell=True)
    return 404, err(404, "Base.1.12.ResourceMissingAtURI", "no such action")


def start_task(apply, dell=False):
    tid = "JID_%d" % (len(state["tasks"]) + 257309938313)
    path = R + "/TaskService/Tasks/" + tid if dell else R + "/TaskService/TaskMonitors/" + tid
    state["tasks"][path] = {"polls": A.task_polls, "apply": apply, "dell": dell}
    return 202, {"Location": path}


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body=None, headers=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        hdrs = dict(headers or {})
        if data:
            hdrs["Content-Type"] = "application/json"
        hdrs["Content-Length"] = str(len(data))
        hdrs["OData-Version"] = "4.0"
        # Logged, and the state dumped, before the reply goes out: a client
        # that exits right after its last response must find both up to date.
        with open(A.log, "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path,
                                "headers": dict(self.headers.items()), "body": self.raw,
                                "status": status, "reply_headers": hdrs}) + "\n")
        dump_state()
        for k, v in hdrs.items():
            self.send_header(k.lower() if cfg["lower_headers"] else k, v)
        self.end_headers()
        self.wfile.write(data)

    def authed(self):
        tok = self.headers.get("X-Auth-Token")
        if tok and tok in sessions:
            state["token_uses"] = state.get("token_uses", 0) + 1
            if A.expire_after and state["token_uses"] == A.expire_after:
                state.setdefault("expired", []).append(sessions.pop(tok))  # timed out
                collection(cfg["sessions"], list(sessions.values()))
                return False
            return True
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
            return u == A.user and p == A.password
        return False

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.raw = self.rfile.read(n).decode() if n else ""
        path = norm(self.path)
        if A.hang_on and path == norm(A.hang_on) and self.command == "GET" and not hung:
            hung.append(path)  # once
            open(A.log + ".hanging", "w").close()
            time.sleep(30)
        with lock:
            try:
                self.route(path)
            except Exception as e:  # a bug in the fake: make it visible
                self.reply(500, err(500, "Base.1.12.InternalError", "fake bmc: %r" % e))
            dump_state()

    do_GET = do_POST = do_PATCH = do_DELETE = handle_any

    def route(self, path):
        m = self.command
        if m == "GET" and path in (R, "/redfish"):
            return self.reply(200, tree[R])
        if m == "POST" and path == cfg["sessions"]:
            try:
                b = json.loads(self.raw)
            except ValueError:
                return self.reply(400, err(400, "Base.1.12.MalformedJSON", "bad json"))
            if b.get("UserName") != A.user or b.get("Password") != A.password:
                return self.reply(401, sample("session_error.json") if False else
                                  err(401, "Base.1.12.NoValidSession", "Invalid username or password"))
            if len(sessions) >= A.session_limit:
                return self.reply(503, err(503, "Base.1.12.SessionLimitExceeded",
                                           "The session establishment failed due to the number of "
                                           "simultaneous sessions exceeding the limit"))
            tok = uuid.uuid4().hex
            sp = cfg["sessions"] + "/" + tok[:8]
            sessions[tok] = sp
            tree[sp] = {"@odata.id": sp, "Id": tok[:8], "UserName": A.user}
            collection(cfg["sessions"], list(sessions.values()))
            return self.reply(201, tree[sp], {"X-Auth-Token": tok, "Location": sp})
        if not self.authed():
            return self.reply(401, err(401, "Base.1.12.NoValidSession", "No valid session"))
        if m == "DELETE":
            for tok, sp in list(sessions.items()):
                if sp == path:
                    del sessions[tok]
                    del tree[sp]
                    collection(cfg["sessions"], list(sessions.values()))
                    return self.reply(204)
            return self.reply(404, err(404, "Base.1.12.ResourceMissingAtURI", "not found"))
        if path in state["tasks"]:
            t = state["tasks"][path]
            if t["polls"] > 0:
                t["polls"] -= 1
                body = {"TaskState": "Running", "PercentComplete": 50} if t["dell"] else None
                return self.reply(202, body, {"Location": path})
            t["apply"]()
            if t["dell"]:
                state["dell_boot_once"] = "VCD-DVD"
                return self.reply(200, {"@odata.id": path, "TaskState": "Completed",
                                        "TaskStatus": "OK", "Messages": []})
            return self.reply(204)
        if m == "GET":
            if path not in tree:
                return self.reply(404, err(404, "Base.1.12.ResourceMissingAtURI", "not found"))
            if path in state["pending"]:
                state["pending"][path] -= 1
                if state["pending"][path] <= 0:
                    del state["pending"][path]
                    tree[path].update(Inserted=True, ConnectedVia="URI")
                    if prof == "ami":
                        tree[path]["Oem"]["Ami"]["RedirectionStatus"] = "Redirection Started"
            if path == system and state.get("restart_countdown"):
                state["restart_countdown"] -= 1
                if state["restart_countdown"] == 0 and not A.never_power_on:
                    tree[system]["PowerState"] = "On"
            res = copy.deepcopy(tree[path])
            res["@odata.etag"] = etag(path)
            hdrs = {"ETag": etag(path)}
            if path in meta and "allow" in meta[path]:
                hdrs["Allow"] = meta[path]["allow"]
            return self.reply(200, res, hdrs)
        try:
            body = json.loads(self.raw) if self.raw else None
        except ValueError:
            return self.reply(400, err(400, "Base.1.12.MalformedJSON", "bad json"))
        if m == "POST":
            if path not in targets:
                return self.reply(404, err(404, "Base.1.12.ResourceMissingAtURI", "no such action"))
            if body is None:
                return self.reply(415, err(415, "Base.1.12.UnsupportedMediaType", "JSON body needed"))
            owner, name = targets[path]
            if A.task_202 and "ImportSystemConfiguration" not in name:
                media = owner if owner in slots else slot
                snap = copy.deepcopy(tree[media]) if media else None
                st, b = do_action(owner, name, body)
                if st >= 300:
                    return self.reply(st, b)
                # the change shows only once the task is done
                after = copy.deepcopy(tree[media]) if media else None
                if media:
                    tree[media] = snap
                code, loc = start_task(lambda: tree.__setitem__(media, after) if media else None)
                return self.reply(code, None, loc)
            st, b = do_action(owner, name, body)
            if st == 202:
                return self.reply(202, None, b)
            return self.reply(st, b)
        if m == "PATCH":
            if path not in tree or body is None:
                return self.reply(404 if path not in tree else 400,
                                  err(400, "Base.1.12.MalformedJSON", "bad request"))
            allow = meta.get(path, {}).get("allow")
            if allow and "PATCH" not in allow:
                return self.reply(405, err(405, "Base.1.12.OperationNotAllowed", "PATCH not allowed"))
            im = self.headers.get("If-Match")
            if A.stale_etag and path in cfg["if_match"] and not state.get("staled"):
                state["staled"] = True  # someone else changed the resource meanwhile
                bump(path)
            if path in cfg["if_match"] and im != etag(path):
                return self.reply(412, err(412, "Base.1.12.PreconditionFailed",
                                           "The ETag supplied did not match the ETag required"))
            if "Boot" in body:
                if state["post_busy"] > 0:
                    state["post_busy"] -= 1
                    return self.reply(400, {"error": {"code": "iLO.0.10.ExtendedInfo", "@Message.ExtendedInfo": [
                        {"MessageId": "iLO.2.15.UnableToModifyDuringSystemPOST"}]}})
                allowed = tree[path]["Boot"].get("BootSourceOverrideTarget@Redfish.AllowableValues", [])
                tgt = body["Boot"].get("BootSourceOverrideTarget")
                if tgt and tgt not in allowed:
                    return self.reply(400, err(400, "Base.1.12.PropertyValueNotInList",
                                               "bad target %s" % tgt, "Boot/BootSourceOverrideTarget"))
                tree[path]["Boot"].update(body["Boot"])
            elif path in slots and "Image" in body:
                if cfg["reject_inserted"] and ("Inserted" in body or "WriteProtected" in body):
                    return self.reply(400, err(400, "Base.1.12.PropertyUnknown", "Inserted unknown", "Inserted"))
                if body["Image"]:
                    mount(body["Image"], body, path)
                else:
                    eject(path)
            elif path == slot and "Oem" in body:
                for k, v in body["Oem"].items():
                    tree[path].setdefault("Oem", {}).setdefault(k, {}).update(v)
            else:
                return self.reply(400, err(400, "Base.1.12.PropertyNotWritable", "not writable"))
            bump(path)
            return self.reply(204)
        return self.reply(405, err(405, "Base.1.12.OperationNotAllowed", "method not allowed"))


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(A.cert, A.key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(A.port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(A.port_file + ".tmp", A.port_file)


def dump_state(*_):
    with open(A.log + ".state.tmp", "w") as f:
        json.dump({"open_sessions": list(sessions.values()), "slot": tree.get(slot) if slot else None,
                   "data_slot": tree.get(data_slot) if data_slot else None,
                   "system": tree[system], "dell_boot_once": state.get("dell_boot_once"),
                   "booted_from": state.get("booted_from"), "fetched": state.get("fetched", []),
                   "expired": state.get("expired", [])}, f)
    os.rename(A.log + ".state.tmp", A.log + ".state")


def stop(*_):
    if vm:
        vm.close()
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
if vm:
    if tree[system].get("PowerState") == "On":
        vm_power(system, "On")
    threading.Thread(target=vm_watch, daemon=True).start()
dump_state()
try:
    srv.serve_forever()
finally:
    if vm:
        vm.close()
