"""How each test image is made offline, and why the others are not.

A recipe turns the suite's source tree (Go programs of ``test/images``), Debian packages of the
target architecture (:mod:`conformance.upstream.debs`) and catatonit into an
:class:`k3py.images.oci.Image` under the exact reference the suite pulls. Recipes are keyed by
the upstream image's name (``agnhost``, ``busybox``…); every tag of that name is made by the
same recipe and carries its own reference as a label, so two tags are two distinct images (the
kubelet and containerd report the tag that was asked for).

What each image holds, against upstream's Dockerfile (``test/images/<name>/Dockerfile``):

- **busybox** — Debian's busybox-static, one ``/bin/<applet>`` link per applet, accounts and
  directories of Docker's busybox image (``/tmp`` 1777); ``/bin/sh`` is Debian's static bash.
  Upstream: Docker's ``busybox:1.37.0``.
- **agnhost** — ``go build ./test/images/agnhost`` (CGO off) at ``/agnhost``, ``/agnhost-2``
  link, porter's ``localhost.crt``/``.key``, ``/uploads``, the ``user-defined-in-image`` (1000) and
  ``group-defined-in-image`` (50000) accounts, on the busybox tree plus what the alpine base adds
  that tests call: ``curl``, ``dig``, ``getent``, ``nc`` (OpenBSD), ``bash`` from Debian with their
  libraries; ``/bin/sh`` is bash (busybox-static's shell would run its own applets, its ``nc``
  among them, before those programs). Not included: CoreDNS (``/coredns``, downloaded from
  GitHub upstream), iperf, socat, iproute2's ``ss``, the fake registry's ``/var/registry``.
- **pause** — catatonit (Debian) as ``catatonit -P``: :func:`build.payload.pause_image`.
- **nginx** — Debian's nginx 1.22 (not 1.27/1.28) with its libraries, a config serving
  ``/usr/share/nginx/html`` on port 80 with logs on stdout/stderr, on the busybox tree.
- **glibc-dns-testing** — ``dig`` (bind9-dnsutils) and glibc's ``getent`` with their libraries on
  the busybox tree (upstream: debian:bookworm-slim + dnsutils + CoreDNS 1.5.0, not included).
- **nonewprivs** — ``go build ./test/images/nonewprivs`` as setuid ``/usr/local/bin/nnp`` on busybox.
- **nonroot** — the busybox tree run as user 1234 (upstream: Debian base, ``USER 1234``).
- **kitten**, **nautilus** — the agnhost tree plus their ``html/`` files, ``CMD test-webserver``.
- **sample-apiserver** — ``go build k8s.io/sample-apiserver`` at the staging version of the
  release (newer than the 1.29.2 the tag names), ``/sample-apiserver`` on busybox.
- **etcd** — Debian's etcd 3.4 (not 3.7) at ``/usr/local/bin/etcd`` with its libraries, on busybox.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from build.payload import pause_image
from build.runner import CommandLog, call
from build.targets import Target
from conformance.upstream import golang
from conformance.upstream.debs import DebianPackages
from conformance.upstream.rootfs import BUSYBOX_ACCOUNTS, Account, ImageTree
from k3py.images import oci

LABEL_REFERENCE = "io.k3py.conformance.reference"
LABEL_RECIPE = "io.k3py.conformance.recipe"

AGNHOST_ACCOUNTS = (
    *BUSYBOX_ACCOUNTS,
    Account("user-defined-in-image", 1000, home="/home/user-defined-in-image", shell="/bin/sh"),
    Account("group-defined-in-image", 50000, group_only=True, members=("user-defined-in-image",)),
)
NONROOT_UID = 1234
NGINX_CONF = b"""user www-data;
worker_processes auto;
pid /run/nginx.pid;
error_log /var/log/nginx/error.log notice;

events {
    worker_connections 1024;
}

http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /var/log/nginx/access.log;
    sendfile on;
    keepalive_timeout 65;

    server {
        listen 80;
        server_name localhost;
        location / {
            root /usr/share/nginx/html;
            index index.html index.htm;
        }
        error_page 500 502 503 504 /50x.html;
        location = /50x.html {
            root /usr/share/nginx/html;
        }
    }
}
"""

# Debian package and path of the programs the alpine-based upstream images carry.
AGNHOST_TOOLS = (
    ("curl", "usr/bin/curl", "/usr/bin/curl"),
    ("bind9-dnsutils", "usr/bin/dig", "/usr/bin/dig"),
    ("libc-bin", "usr/bin/getent", "/usr/bin/getent"),
    ("netcat-openbsd", "bin/nc.openbsd", "/usr/bin/nc"),
    ("bash", "bin/bash", "/bin/bash"),
)
BUSYBOX_SHELL = ("bash-static", "bin/bash-static", "/bin/bash")
DNS_TOOLS = (
    ("bind9-dnsutils", "usr/bin/dig", "/usr/bin/dig"),
    ("libc-bin", "usr/bin/getent", "/usr/bin/getent"),
)


@dataclass
class Made:
    """A recipe's result: the image, where its parts came from, how it differs from upstream's."""

    image: oci.Image
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Workshop:
    """What recipes share in one images build: the source tree, packages, Go, and built parts."""

    def __init__(
        self,
        *,
        source: Path,
        version: str,
        target: Target,
        work: Path,
        packages: DebianPackages,
        go: Path,
        gomodcache: Path,
        created: int,
        log: CommandLog,
    ) -> None:
        self.source = source
        self.version = version
        self.target = target
        self.work = work
        self.packages = packages
        self.go = go
        self.env = golang.go_environment(gomodcache, target)
        self.created = created
        self.log = log
        self._programs: dict[str, Path] = {}
        self._applets: list[str] | None = None

    def go_program(self, package: str, name: str) -> Path:
        """``go build`` of a main package of the module (static, for the target), once per build."""
        if name not in self._programs:
            out = self.work / "bin" / name
            out.parent.mkdir(parents=True, exist_ok=True)
            call(
                [self.go, "build", "-trimpath", "-ldflags", "-s -w", "-o", out, package],
                log=self.log,
                env=self.env,
                cwd=self.source,
            )
            self._programs[name] = out
        return self._programs[name]

    def busybox_tree(self, sources: list[str], accounts: tuple[Account, ...] = BUSYBOX_ACCOUNTS) -> ImageTree:
        """A tree with busybox and its applets, the base directories and ``accounts``."""
        package = self.packages.get("busybox-static")
        binary = self.packages.file("busybox-static", "bin/busybox")
        if self._applets is None:
            # Runs the target's busybox: natively, or under qemu-user-static for a foreign target.
            listed = call([binary, "--list"], log=self.log)
            self._applets = [line.strip() for line in listed.splitlines() if line.strip()]
        tree = ImageTree()
        tree.base(accounts)
        tree.busybox(binary, self._applets)
        sources.append(f"busybox-static {package.version} (Debian, {len(self._applets)} applets)")
        return tree

    def add_programs(
        self, tree: ImageTree, sources: list[str], programs: tuple[tuple[str, str, str], ...]
    ) -> None:
        """Debian programs with their interpreter and libraries."""
        for package, path, destination in programs:
            tree.add(self.packages.program(package, path, destination))
            sources.append(f"{package} {self.packages.get(package).version} (Debian): {destination}")

    def image(
        self,
        reference: str,
        recipe: str,
        tree: ImageTree,
        *,
        entrypoint: tuple[str, ...] = (),
        cmd: tuple[str, ...] = (),
        user: str = "",
    ) -> oci.Image:
        """The image of ``tree`` for the target, labelled with its reference and recipe."""
        return oci.Image(
            reference=reference,
            architecture=self.target.go_arch,
            variant=self.target.oci_variant,
            files=tree.entries(),
            entrypoint=entrypoint,
            cmd=cmd,
            user=user,
            created=self.created,
            labels={LABEL_REFERENCE: reference, LABEL_RECIPE: recipe},
        )

    def text(self, path: str) -> str:
        """A file of the module's source tree, stripped (``test/images/agnhost/VERSION``)."""
        return (self.source / path).read_text(encoding="utf-8").strip()


def busybox(ws: Workshop, reference: str) -> Made:
    sources: list[str] = []
    tree = ws.busybox_tree(sources)
    # Debian's busybox shell (1.35 here, and 1.37 in Debian 13 as well) drops environment
    # variables whose names are not shell names (``data-1``), which upstream's image keeps for
    # the programs it runs and tests read back with ``sh -c env``: sh is Debian's static bash,
    # which keeps them too (and words its errors otherwise than ash).
    ws.add_programs(tree, sources, (BUSYBOX_SHELL,))
    tree.symlink("/bin/sh", "bash")
    return Made(
        ws.image(reference, "busybox", tree, cmd=("sh",)),
        sources,
        [
            "Debian's busybox-static instead of Docker's busybox:1.37.0 (other applet set, same layout)",
            "/bin/sh is Debian's static bash (Debian's busybox shell drops variables such as data-1)",
        ],
    )


def agnhost_tree(ws: Workshop, sources: list[str], notes: list[str]) -> ImageTree:
    """What upstream's agnhost Dockerfile puts together, as far as it can be had offline."""
    tree = ws.busybox_tree(sources, AGNHOST_ACCOUNTS)
    ws.add_programs(tree, sources, AGNHOST_TOOLS)
    # Debian's busybox-static shell runs its own applets before programs of the same name, so
    # its ``sh`` would run busybox's nc (no -v, -z, -u) for OpenBSD's: sh is bash, as POSIX sh.
    tree.symlink("/bin/sh", "bash")
    tree.copy("/agnhost", ws.go_program("./test/images/agnhost", "agnhost"), 0o755)
    tree.symlink("/agnhost-2", "agnhost")
    porter = ws.source / "test/images/agnhost/porter"
    tree.copy("/localhost.crt", porter / "localhost.crt", 0o644)
    tree.copy("/localhost.key", porter / "localhost.key", 0o644)
    tree.directory("/uploads")
    tree.directory("/home/user-defined-in-image")
    version = ws.text("test/images/agnhost/VERSION")
    sources.append(f"agnhost {version}: go build k8s.io/kubernetes/test/images/agnhost@{ws.version}")
    notes.append("no /coredns, iperf, socat, ss or /var/registry (upstream downloads or apk-installs them)")
    return tree


def agnhost(ws: Workshop, reference: str) -> Made:
    sources: list[str] = []
    notes: list[str] = []
    tree = agnhost_tree(ws, sources, notes)
    tag, version = reference.rsplit(":", 1)[1], ws.text("test/images/agnhost/VERSION")
    if tag != version:
        notes.append(f"tagged {tag} but built from agnhost {version} sources (the release's)")
    return Made(
        ws.image(reference, "agnhost", tree, entrypoint=("/agnhost",), cmd=("pause",)), sources, notes
    )


def agnhost_web(name: str) -> Recipe:
    """kitten and nautilus: agnhost serving their ``html/`` files with test-webserver."""

    def recipe(ws: Workshop, reference: str) -> Made:
        sources: list[str] = []
        notes: list[str] = []
        tree = agnhost_tree(ws, sources, notes)
        for path in sorted((ws.source / "test/images" / name / "html").iterdir()):
            tree.copy(f"/{path.name}", path, 0o644)
        image = ws.image(reference, name, tree, entrypoint=("/agnhost",), cmd=("test-webserver",))
        return Made(image, sources, notes)

    return recipe


def pause(ws: Workshop, reference: str) -> Made:
    package = ws.packages.get("catatonit")
    catatonit = ws.packages.file("catatonit", "usr/bin/catatonit")
    image = pause_image(catatonit.read_bytes(), reference=reference, target=ws.target, created=ws.created)
    return Made(
        replace(image, labels={LABEL_REFERENCE: reference, LABEL_RECIPE: "pause"}),
        [f"catatonit {package.version} (Debian)"],
        ["catatonit -P instead of upstream's pause binary (both wait for a signal)"],
    )


def nginx(ws: Workshop, reference: str) -> Made:
    sources: list[str] = []
    tree = ws.busybox_tree(sources)
    ws.add_programs(tree, sources, (("nginx", "usr/sbin/nginx", "/usr/sbin/nginx"),))
    common = ws.packages.get("nginx-common")
    tree.copy("/etc/nginx/mime.types", ws.packages.file("nginx-common", "etc/nginx/mime.types"), 0o644)
    tree.file("/etc/nginx/nginx.conf", NGINX_CONF, 0o644)
    index = ws.packages.file("nginx-common", "usr/share/nginx/html/index.html")
    tree.copy("/usr/share/nginx/html/index.html", index, 0o644)
    tree.symlink("/var/log/nginx/access.log", "/dev/stdout")
    tree.symlink("/var/log/nginx/error.log", "/dev/stderr")
    tree.directory("/var/lib/nginx")
    tree.directory("/run")
    sources.append(f"nginx-common {common.version} (Debian): mime.types, index.html")
    tag = reference.rsplit(":", 1)[1]
    return Made(
        ws.image(reference, "nginx", tree, cmd=("nginx", "-g", "daemon off;")),
        sources,
        [f"Debian's nginx {ws.packages.get('nginx').version} stands in for nginx {tag}; config: port 80"],
    )


def glibc_dns_testing(ws: Workshop, reference: str) -> Made:
    sources: list[str] = []
    tree = ws.busybox_tree(sources)
    ws.add_programs(tree, sources, DNS_TOOLS)
    return Made(
        ws.image(reference, "glibc-dns-testing", tree, cmd=("sh",)),
        sources,
        ["busybox instead of Debian's userland; no /coredns (upstream downloads CoreDNS 1.5.0)"],
    )


def nonewprivs(ws: Workshop, reference: str) -> Made:
    sources: list[str] = []
    tree = ws.busybox_tree(sources)
    tree.copy("/usr/local/bin/nnp", ws.go_program("./test/images/nonewprivs", "nnp"), 0o4755)
    sources.append(f"nnp: go build k8s.io/kubernetes/test/images/nonewprivs@{ws.version}")
    return Made(ws.image(reference, "nonewprivs", tree, cmd=("nnp",)), sources, ["busybox instead of alpine"])


def nonroot(ws: Workshop, reference: str) -> Made:
    sources: list[str] = []
    tree = ws.busybox_tree(sources)
    return Made(
        ws.image(reference, "nonroot", tree, cmd=("sh",), user=str(NONROOT_UID)),
        sources,
        [f"busybox instead of Debian base; USER {NONROOT_UID} as upstream"],
    )


def sample_apiserver(ws: Workshop, reference: str) -> Made:
    sources: list[str] = []
    tree = ws.busybox_tree(sources)
    tree.copy("/sample-apiserver", ws.go_program("k8s.io/sample-apiserver", "sample-apiserver"), 0o755)
    sources.append(f"sample-apiserver: go build k8s.io/sample-apiserver, as {ws.version}'s go.mod requires")
    return Made(
        ws.image(reference, "sample-apiserver", tree, entrypoint=("/sample-apiserver",)),
        sources,
        [f"the release's sample-apiserver, not {reference.rsplit(':', 1)[1]}; busybox instead of alpine"],
    )


def etcd(ws: Workshop, reference: str) -> Made:
    sources: list[str] = []
    tree = ws.busybox_tree(sources)
    ws.add_programs(tree, sources, (("etcd-server", "usr/bin/etcd", "/usr/local/bin/etcd"),))
    tree.directory("/var/lib/etcd", 0o700)
    version, tag = ws.packages.get("etcd-server").version, reference.rsplit(":", 1)[1]
    return Made(ws.image(reference, "etcd", tree), sources, [f"Debian's etcd {version} stands in for {tag}"])


Recipe = Callable[[Workshop, str], Made]

RECIPES: dict[str, Recipe] = {
    "agnhost": agnhost,
    "busybox": busybox,
    "pause": pause,
    "nginx": nginx,
    "glibc-dns-testing": glibc_dns_testing,
    "nonewprivs": nonewprivs,
    "nonroot": nonroot,
    "kitten": agnhost_web("kitten"),
    "nautilus": agnhost_web("nautilus"),
    "sample-apiserver": sample_apiserver,
    "etcd": etcd,
}
"""Recipes by upstream image name (:attr:`conformance.upstream.catalog.UpstreamImage.name`)."""

ABSENT_BY_DESIGN = {
    "AgnhostPrivate": "must not be pullable: the tests check that an authenticated registry refuses them",
    "InvalidRegistryImage": "must not exist: the tests check that pulling it fails",
}
"""Image constants that must stay unavailable for their tests to pass."""

NOT_BUILT = {
    "apparmor-loader": "loads AppArmor profiles (alpine + apparmor); no offline recipe",
    "distroless-iptables": "kube-proxy's distroless iptables image; no offline recipe",
    "ipc-utils": "alpine + util-linux; no offline recipe",
    "node-perf/npb-ep": "node performance workload (NAS benchmarks); no offline recipe",
    "node-perf/npb-is": "node performance workload (NAS benchmarks); no offline recipe",
    "node-perf/pytorch-wide-deep": "node performance workload (PyTorch); no offline recipe",
    "perl": "Docker's perl image; no offline recipe",
    "regression-issue-74839": "a Go test program on Debian base; no offline recipe yet",
    "resource-consumer": "a Go program plus Debian's stress; no offline recipe yet",
    "sample-device-plugin": "a device plugin (node e2e); no offline recipe",
    "volume/iscsi": "an iSCSI target server (needs kernel support); no offline recipe",
    "volume/nfs": "an NFS server (needs kernel nfsd); no offline recipe",
    "nfs-provisioner": "an NFS provisioner (sig-storage); no offline recipe",
}
"""Why an upstream image has no recipe; anything absent here and from RECIPES is a CSI sidecar."""

CSI_REASON = "a CSI driver or sidecar image (sig-storage repositories); no offline recipe"
