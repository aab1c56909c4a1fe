"""The file tree of a test image, assembled entry by entry before :mod:`k3py.images.oci` writes it.

:class:`ImageTree` collects files, symlinks and directories by their path in the image (a later
entry for the same path replaces the earlier, as a Dockerfile's later layer would). Helpers add
what most images share: the usual directories (``/tmp`` world-writable), ``/etc/passwd`` and
``/etc/group`` from :class:`Account` lists, ``nsswitch.conf``, and a busybox with one symlink
per applet in ``/bin`` (the layout of Docker's ``busybox`` image that upstream's test images
start from).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from conformance.upstream.debs import ImageFile
from k3py.images import oci

BASE_DIRECTORIES = (
    ("/tmp", 0o1777),
    ("/var/tmp", 0o1777),
    ("/root", 0o700),
    ("/home", 0o755),
    ("/etc", 0o755),
    ("/proc", 0o555),
    ("/sys", 0o555),
    ("/dev", 0o755),
    ("/usr/sbin", 0o755),
    ("/usr/local/bin", 0o755),
)
NSSWITCH = b"passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nservices: files\n"


@dataclass(frozen=True)
class Account:
    """A user (uid = gid of a group of the same name unless ``gid`` is given) or a bare group."""

    name: str
    uid: int
    gid: int | None = None
    home: str = "/nonexistent"
    shell: str = "/bin/false"
    group_only: bool = False
    members: tuple[str, ...] = ()


BUSYBOX_ACCOUNTS = (
    Account("root", 0, home="/root", shell="/bin/sh"),
    Account("daemon", 1, home="/usr/sbin"),
    Account("bin", 2, home="/bin"),
    Account("sys", 3, home="/dev"),
    Account("sync", 4, gid=100, home="/bin", shell="/bin/sync"),
    Account("mail", 8, home="/var/spool/mail"),
    Account("www-data", 33, home="/var/www"),
    Account("operator", 37, gid=0, home="/var"),
    Account("users", 100, group_only=True),
    Account("nobody", 65534, home="/home"),
    Account("nogroup", 65534, group_only=True),
)


@dataclass
class ImageTree:
    """Entries of one image by path; :meth:`entries` gives them to :class:`k3py.images.oci.Image`."""

    by_path: dict[str, oci.File | oci.Symlink | oci.Directory] = field(default_factory=dict)

    def file(self, path: str, data: bytes, mode: int = 0o755) -> None:
        self.by_path[_key(path)] = oci.File(path, data, mode)

    def copy(self, path: str, source: Path, mode: int | None = None) -> None:
        """``source``'s bytes at ``path``; its mode unless ``mode`` is given (0o755 for executables)."""
        data = source.read_bytes()
        if mode is None:
            mode = 0o755 if source.stat().st_mode & 0o111 else 0o644
        self.file(path, data, mode)

    def symlink(self, path: str, target: str) -> None:
        self.by_path[_key(path)] = oci.Symlink(path, target)

    def directory(self, path: str, mode: int = 0o755) -> None:
        self.by_path[_key(path)] = oci.Directory(path, mode)

    def add(self, files: Iterable[ImageFile]) -> None:
        """Image files from Debian packages (:meth:`conformance.upstream.debs.DebianPackages.program`)."""
        for item in files:
            self.copy(item.path, item.source)

    def base(self, accounts: Iterable[Account] = BUSYBOX_ACCOUNTS) -> None:
        """The directories every image has, accounts, nsswitch.conf."""
        for path, mode in BASE_DIRECTORIES:
            self.directory(path, mode)
        self.accounts(accounts)
        self.file("/etc/nsswitch.conf", NSSWITCH, 0o644)

    def accounts(self, accounts: Iterable[Account]) -> None:
        """``/etc/passwd`` and ``/etc/group`` (0644) for ``accounts``, in their order."""
        passwd, group = render_accounts(accounts)
        self.file("/etc/passwd", passwd, 0o644)
        self.file("/etc/group", group, 0o644)

    def busybox(self, binary: Path, applets: Iterable[str]) -> None:
        """``/bin/busybox`` and a ``/bin/<applet>`` symlink to it for each applet."""
        self.copy("/bin/busybox", binary, 0o755)
        for applet in sorted(set(applets)):
            if applet != "busybox" and "/" not in applet:
                self.symlink(f"/bin/{applet}", "busybox")

    def entries(self) -> tuple[oci.File | oci.Symlink | oci.Directory, ...]:
        """The entries in path order (the writer refuses a file that is also a directory)."""
        return tuple(entry for _, entry in sorted(self.by_path.items()))


def render_accounts(accounts: Iterable[Account]) -> tuple[bytes, bytes]:
    """``(passwd, group)`` file contents: one user line per user, one group per distinct gid name."""
    users: list[str] = []
    groups: dict[str, tuple[int, list[str]]] = {}
    for account in accounts:
        if account.group_only:
            groups.setdefault(account.name, (account.uid, []))[1].extend(account.members)
            continue
        gid = account.uid if account.gid is None else account.gid
        users.append(f"{account.name}:x:{account.uid}:{gid}:{account.name}:{account.home}:{account.shell}")
        if account.gid is None:
            groups.setdefault(account.name, (account.uid, []))[1].extend(account.members)
    group_lines = [f"{name}:x:{gid}:{','.join(members)}" for name, (gid, members) in groups.items()]
    return ("\n".join(users) + "\n").encode(), ("\n".join(group_lines) + "\n").encode()


def _key(path: str) -> str:
    return "/" + path.strip("/")
