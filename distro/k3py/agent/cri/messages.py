"""Message layouts: the CRI (``runtime.v1``) and the containerd services the air-gap import uses.

:data:`CRI` follows k8s.io/cri-api's ``pkg/apis/runtime/v1/api.proto`` (the v0.37 field
numbers, which only ever grow): every message of the two services, except the Windows-only ones
(their fields are skipped on decode, as any unknown field is) and the ``Stream*`` list variants.
Field names are the proto's own, so a decoded ``ContainerStatus`` reads
``status["started_at"]``; the few proto fields that are not snake case keep their spelling
(``Mount.uidMappings``, ``ContainerConfig.CDI_devices``, ``PsiData.Avg10``).

containerd 1.6 speaks an older runtime.v1: it has no ``RuntimeConfig``, no
``GetContainerEvents``, no ``Image.pinned`` and no ``image_id``; those fields decode as zero.

:data:`CONTAINERD` holds the messages of ``containerd.services.{content,images,leases,version}.v1``
as containerd 1.6 registers them. Each service's request names are prefixed where two services
would collide (``CreateLeaseRequest``).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

from k3py.agent.cri.wire import Schema

RUNTIME_SERVICE: Final = "/runtime.v1.RuntimeService/"
IMAGE_SERVICE: Final = "/runtime.v1.ImageService/"
CONTENT_SERVICE: Final = "/containerd.services.content.v1.Content/"
IMAGES_SERVICE: Final = "/containerd.services.images.v1.Images/"
LEASES_SERVICE: Final = "/containerd.services.leases.v1.Leases/"
VERSION_SERVICE: Final = "/containerd.services.version.v1.Version/"


class ContainerState(IntEnum):
    CREATED = 0
    RUNNING = 1
    EXITED = 2
    UNKNOWN = 3


class PodSandboxState(IntEnum):
    READY = 0
    NOTREADY = 1


class NamespaceMode(IntEnum):
    POD = 0
    CONTAINER = 1
    NODE = 2
    TARGET = 3


class Protocol(IntEnum):
    TCP = 0
    UDP = 1
    SCTP = 2


class MountPropagation(IntEnum):
    PRIVATE = 0
    HOST_TO_CONTAINER = 1
    BIDIRECTIONAL = 2


class ProfileType(IntEnum):
    """``SecurityProfile.profile_type`` (seccomp and AppArmor)."""

    RUNTIME_DEFAULT = 0
    UNCONFINED = 1
    LOCALHOST = 2


class SupplementalGroupsPolicy(IntEnum):
    MERGE = 0
    STRICT = 1


class CgroupDriver(IntEnum):
    SYSTEMD = 0
    CGROUPFS = 1


class ContainerEventType(IntEnum):
    CREATED = 0
    STARTED = 1
    STOPPED = 2
    DELETED = 3


class WriteAction(IntEnum):
    """``containerd.services.content.v1.WriteAction``."""

    STAT = 0
    WRITE = 1
    COMMIT = 2


_METADATA = {
    "PodSandboxMetadata": "name=1 uid=2 namespace=3 attempt=4:uint32",
    "ContainerMetadata": "name=1 attempt=2:uint32",
    "KeyValue": "key=1 value=2",
    "Int64Value": "value=1:int64",
    "UInt64Value": "value=1:uint64",
    "ImageSpec": "image=1 annotations=2:{str,str} user_specified_image=18 runtime_handler=19 image_ref=20",
    "Empty": "",
}

_SECURITY = {
    "IDMapping": "host_id=1:uint32 container_id=2:uint32 length=3:uint32",
    "UserNamespace": "mode=1:enum uids=2:*IDMapping gids=3:*IDMapping",
    "NamespaceOption": "network=1:enum pid=2:enum ipc=3:enum target_id=4 userns_options=5:UserNamespace",
    "SELinuxOption": "user=1 role=2 type=3 level=4",
    "SecurityProfile": "profile_type=1:enum localhost_ref=2",
    "Capability": "add_capabilities=1:*str drop_capabilities=2:*str add_ambient_capabilities=3:*str",
    "LinuxSandboxSecurityContext": (
        "namespace_options=1:NamespaceOption selinux_options=2:SELinuxOption run_as_user=3:Int64Value"
        " readonly_rootfs=4:bool supplemental_groups=5:*int64 privileged=6:bool seccomp_profile_path=7"
        " run_as_group=8:Int64Value seccomp=9:SecurityProfile apparmor=10:SecurityProfile"
        " supplemental_groups_policy=11:enum"
    ),
    "LinuxContainerSecurityContext": (
        "capabilities=1:Capability privileged=2:bool namespace_options=3:NamespaceOption"
        " selinux_options=4:SELinuxOption run_as_user=5:Int64Value run_as_username=6 readonly_rootfs=7:bool"
        " supplemental_groups=8:*int64 apparmor_profile=9 seccomp_profile_path=10 no_new_privs=11:bool"
        " run_as_group=12:Int64Value masked_paths=13:*str readonly_paths=14:*str seccomp=15:SecurityProfile"
        " apparmor=16:SecurityProfile supplemental_groups_policy=17:enum"
    ),
}

_SANDBOX = {
    "DNSConfig": "servers=1:*str searches=2:*str options=3:*str",
    "PortMapping": "protocol=1:enum container_port=2:int32 host_port=3:int32 host_ip=4",
    "LinuxPodSandboxConfig": (
        "cgroup_parent=1 security_context=2:LinuxSandboxSecurityContext sysctls=3:{str,str}"
        " overhead=4:LinuxContainerResources resources=5:LinuxContainerResources"
    ),
    "PodSandboxConfig": (
        "metadata=1:PodSandboxMetadata hostname=2 log_directory=3 dns_config=4:DNSConfig"
        " port_mappings=5:*PortMapping labels=6:{str,str} annotations=7:{str,str}"
        " linux=8:LinuxPodSandboxConfig"
    ),
    "RunPodSandboxRequest": "config=1:PodSandboxConfig runtime_handler=2",
    "RunPodSandboxResponse": "pod_sandbox_id=1",
    "PodSandboxIdRequest": "pod_sandbox_id=1",  # Stop/RemovePodSandbox, PodSandboxStats
    "PodSandboxStatusRequest": "pod_sandbox_id=1 verbose=2:bool",
    "PodIP": "ip=1",
    "PodSandboxNetworkStatus": "ip=1 additional_ips=2:*PodIP",
    "Namespace": "options=2:NamespaceOption",
    "LinuxPodSandboxStatus": "namespaces=1:Namespace",
    "PodSandboxStatus": (
        "id=1 metadata=2:PodSandboxMetadata state=3:enum created_at=4:int64 network=5:PodSandboxNetworkStatus"
        " linux=6:LinuxPodSandboxStatus labels=7:{str,str} annotations=8:{str,str} runtime_handler=9"
    ),
    "PodSandboxStatusResponse": (
        "status=1:PodSandboxStatus info=2:{str,str} containers_statuses=3:*ContainerStatus timestamp=4:int64"
    ),
    "PodSandboxStateValue": "state=1:enum",
    "PodSandboxFilter": "id=1 state=2:PodSandboxStateValue label_selector=3:{str,str}",
    "ListPodSandboxRequest": "filter=1:PodSandboxFilter",
    "PodSandbox": (
        "id=1 metadata=2:PodSandboxMetadata state=3:enum created_at=4:int64 labels=5:{str,str}"
        " annotations=6:{str,str} runtime_handler=7"
    ),
    "ListPodSandboxResponse": "items=1:*PodSandbox",
}

_CONTAINER = {
    "Mount": (
        "container_path=1 host_path=2 readonly=3:bool selinux_relabel=4:bool propagation=5:enum"
        " uidMappings=6:*IDMapping gidMappings=7:*IDMapping recursive_read_only=8:bool image=9:ImageSpec"
        " image_sub_path=10"
    ),
    "Device": "container_path=1 host_path=2 permissions=3",
    "CDIDevice": "name=1",
    "HugepageLimit": "page_size=1 limit=2:uint64",
    "LinuxContainerResources": (
        "cpu_period=1:int64 cpu_quota=2:int64 cpu_shares=3:int64 memory_limit_in_bytes=4:int64"
        " oom_score_adj=5:int64 cpuset_cpus=6 cpuset_mems=7 hugepage_limits=8:*HugepageLimit"
        " unified=9:{str,str} memory_swap_limit_in_bytes=10:int64"
    ),
    "LinuxContainerConfig": (
        "resources=1:LinuxContainerResources security_context=2:LinuxContainerSecurityContext"
    ),
    "ContainerConfig": (
        "metadata=1:ContainerMetadata image=2:ImageSpec command=3:*str args=4:*str working_dir=5"
        " envs=6:*KeyValue mounts=7:*Mount devices=8:*Device labels=9:{str,str} annotations=10:{str,str}"
        " log_path=11 stdin=12:bool stdin_once=13:bool tty=14:bool linux=15:LinuxContainerConfig"
        " CDI_devices=17:*CDIDevice stop_signal=18:enum"
    ),
    "CreateContainerRequest": "pod_sandbox_id=1 config=2:ContainerConfig sandbox_config=3:PodSandboxConfig",
    "CreateContainerResponse": "container_id=1",
    "ContainerIdRequest": "container_id=1",  # Start/Remove, ReopenContainerLog, ContainerStats
    "StopContainerRequest": "container_id=1 timeout=2:int64",
    "ContainerStateValue": "state=1:enum",
    "ContainerFilter": "id=1 state=2:ContainerStateValue pod_sandbox_id=3 label_selector=4:{str,str}",
    "ListContainersRequest": "filter=1:ContainerFilter",
    "Container": (
        "id=1 pod_sandbox_id=2 metadata=3:ContainerMetadata image=4:ImageSpec image_ref=5 state=6:enum"
        " created_at=7:int64 labels=8:{str,str} annotations=9:{str,str} image_id=10"
    ),
    "ListContainersResponse": "containers=1:*Container",
    "ContainerStatusRequest": "container_id=1 verbose=2:bool",
    "LinuxContainerUser": "uid=1:int64 gid=2:int64 supplemental_groups=3:*int64",
    "ContainerUser": "linux=1:LinuxContainerUser",
    "ContainerResources": "linux=1:LinuxContainerResources",
    "ContainerStatus": (
        "id=1 metadata=2:ContainerMetadata state=3:enum created_at=4:int64 started_at=5:int64"
        " finished_at=6:int64 exit_code=7:int32 image=8:ImageSpec image_ref=9 reason=10 message=11"
        " labels=12:{str,str} annotations=13:{str,str} mounts=14:*Mount log_path=15"
        " resources=16:ContainerResources image_id=17 user=18:ContainerUser stop_signal=19:enum"
    ),
    "ContainerStatusResponse": "status=1:ContainerStatus info=2:{str,str}",
    "UpdateContainerResourcesRequest": (
        "container_id=1 linux=2:LinuxContainerResources annotations=4:{str,str}"
    ),
    "ExecSyncRequest": "container_id=1 cmd=2:*str timeout=3:int64",
    "ExecSyncResponse": "stdout=1:bytes stderr=2:bytes exit_code=3:int32",
    "ExecRequest": (
        "container_id=1 cmd=2:*str tty=3:bool stdin=4:bool stdout=5:bool stderr=6:bool audit_request_id=7"
    ),
    "AttachRequest": "container_id=1 stdin=2:bool tty=3:bool stdout=4:bool stderr=5:bool audit_request_id=6",
    "PortForwardRequest": "pod_sandbox_id=1 port=2:*int32",
    "UrlResponse": "url=1",  # Exec, Attach, PortForward
    "CheckpointContainerRequest": "container_id=1 location=2 timeout=3:int64",
}

_STATS = {
    "PsiData": "Total=1:uint64 Avg10=2:double Avg60=3:double Avg300=4:double",
    "PsiStats": "Full=1:PsiData Some=2:PsiData",
    "CpuUsage": (
        "timestamp=1:int64 usage_core_nano_seconds=2:UInt64Value usage_nano_cores=3:UInt64Value"
        " psi=4:PsiStats"
    ),
    "MemoryUsage": (
        "timestamp=1:int64 working_set_bytes=2:UInt64Value available_bytes=3:UInt64Value"
        " usage_bytes=4:UInt64Value rss_bytes=5:UInt64Value page_faults=6:UInt64Value"
        " major_page_faults=7:UInt64Value psi=8:PsiStats"
    ),
    "SwapUsage": "timestamp=1:int64 swap_available_bytes=2:UInt64Value swap_usage_bytes=3:UInt64Value",
    "IoUsage": "timestamp=1:int64 psi=2:PsiStats",
    "NetworkInterfaceUsage": (
        "name=1 rx_bytes=2:UInt64Value rx_errors=3:UInt64Value tx_bytes=4:UInt64Value tx_errors=5:UInt64Value"
    ),
    "NetworkUsage": (
        "timestamp=1:int64 default_interface=2:NetworkInterfaceUsage interfaces=3:*NetworkInterfaceUsage"
    ),
    "ProcessUsage": "timestamp=1:int64 process_count=2:UInt64Value",
    "FilesystemIdentifier": "mountpoint=1",
    "FilesystemUsage": (
        "timestamp=1:int64 fs_id=2:FilesystemIdentifier used_bytes=3:UInt64Value inodes_used=4:UInt64Value"
    ),
    "ContainerAttributes": "id=1 metadata=2:ContainerMetadata labels=3:{str,str} annotations=4:{str,str}",
    "ContainerStats": (
        "attributes=1:ContainerAttributes cpu=2:CpuUsage memory=3:MemoryUsage"
        " writable_layer=4:FilesystemUsage swap=5:SwapUsage io=6:IoUsage"
    ),
    "ContainerStatsResponse": "stats=1:ContainerStats",
    "ContainerStatsFilter": "id=1 pod_sandbox_id=2 label_selector=3:{str,str}",
    "ListContainerStatsRequest": "filter=1:ContainerStatsFilter",
    "ListContainerStatsResponse": "stats=1:*ContainerStats",
    "PodSandboxAttributes": "id=1 metadata=2:PodSandboxMetadata labels=3:{str,str} annotations=4:{str,str}",
    "LinuxPodSandboxStats": (
        "cpu=1:CpuUsage memory=2:MemoryUsage network=3:NetworkUsage process=4:ProcessUsage"
        " containers=5:*ContainerStats io=6:IoUsage"
    ),
    "PodSandboxStats": "attributes=1:PodSandboxAttributes linux=2:LinuxPodSandboxStats",
    "PodSandboxStatsResponse": "stats=1:PodSandboxStats",
    "PodSandboxStatsFilter": "id=1 label_selector=2:{str,str}",
    "ListPodSandboxStatsRequest": "filter=1:PodSandboxStatsFilter",
    "ListPodSandboxStatsResponse": "stats=1:*PodSandboxStats",
}

_RUNTIME = {
    "VersionRequest": "version=1",
    "VersionResponse": "version=1 runtime_name=2 runtime_version=3 runtime_api_version=4",
    "StatusRequest": "verbose=1:bool",
    "RuntimeCondition": "type=1 status=2:bool reason=3 message=4",
    "RuntimeStatus": "conditions=1:*RuntimeCondition",
    "RuntimeHandlerFeatures": "recursive_read_only_mounts=1:bool user_namespaces=2:bool",
    "RuntimeHandler": "name=1 features=2:RuntimeHandlerFeatures",
    "RuntimeFeatures": "supplemental_groups_policy=1:bool user_namespaces_host_network=2:bool",
    "StatusResponse": (
        "status=1:RuntimeStatus info=2:{str,str} runtime_handlers=3:*RuntimeHandler"
        " features=4:RuntimeFeatures"
    ),
    "NetworkConfig": "pod_cidr=1",
    "RuntimeConfig": "network_config=1:NetworkConfig",
    "UpdateRuntimeConfigRequest": "runtime_config=1:RuntimeConfig",
    "LinuxRuntimeConfiguration": "cgroup_driver=1:enum",
    "RuntimeConfigResponse": "linux=1:LinuxRuntimeConfiguration",
    "ContainerEventResponse": (
        "container_id=1 container_event_type=2:enum created_at=3:int64 pod_sandbox_status=4:PodSandboxStatus"
        " containers_statuses=5:*ContainerStatus"
    ),
}

_IMAGES = {
    "ImageFilter": "image=1:ImageSpec",
    "ListImagesRequest": "filter=1:ImageFilter",
    "Image": (
        "id=1 repo_tags=2:*str repo_digests=3:*str size=4:uint64 uid=5:Int64Value username=6"
        " spec=7:ImageSpec pinned=8:bool"
    ),
    "ListImagesResponse": "images=1:*Image",
    "ImageStatusRequest": "image=1:ImageSpec verbose=2:bool",
    "ImageStatusResponse": "image=1:Image info=2:{str,str}",
    "AuthConfig": "username=1 password=2 auth=3 server_address=4 identity_token=5 registry_token=6",
    "PullImageRequest": "image=1:ImageSpec auth=2:AuthConfig sandbox_config=3:PodSandboxConfig",
    "PullImageResponse": "image_ref=1",
    "RemoveImageRequest": "image=1:ImageSpec",
    "ImageFsInfoResponse": "image_filesystems=1:*FilesystemUsage container_filesystems=2:*FilesystemUsage",
}

CRI: Final = Schema({**_METADATA, **_SECURITY, **_SANDBOX, **_CONTAINER, **_STATS, **_RUNTIME, **_IMAGES})

CONTAINERD: Final = Schema(
    {
        "Empty": "",
        "Timestamp": "seconds=1:int64 nanos=2:int32",
        "FieldMask": "paths=1:*str",
        "Descriptor": "media_type=1 digest=2 size=3:int64 annotations=5:{str,str}",
        # content.v1
        "Info": "digest=1 size=2:int64 created_at=3:Timestamp updated_at=4:Timestamp labels=5:{str,str}",
        "InfoRequest": "digest=1",
        "InfoResponse": "info=1:Info",
        "UpdateContentRequest": "info=1:Info update_mask=2:FieldMask",
        "UpdateContentResponse": "info=1:Info",
        "ListContentRequest": "filters=1:*str",
        "ListContentResponse": "info=1:*Info",
        "DeleteContentRequest": "digest=1",
        "AbortRequest": "ref=1",
        "WriteContentRequest": (
            "action=1:enum ref=2 total=3:int64 expected=4 offset=5:int64 data=6:bytes labels=7:{str,str}"
        ),
        "WriteContentResponse": (
            "action=1:enum started_at=2:Timestamp updated_at=3:Timestamp offset=4:int64 total=5:int64"
            " digest=6"
        ),
        # images.v1
        "Image": (
            "name=1 labels=2:{str,str} target=3:Descriptor created_at=7:Timestamp updated_at=8:Timestamp"
        ),
        "GetImageRequest": "name=1",
        "ImageResponse": "image=1:Image",  # Get, Create, Update
        "CreateImageRequest": "image=1:Image",
        "UpdateImageRequest": "image=1:Image update_mask=2:FieldMask",
        "ListImagesRequest": "filters=1:*str",
        "ListImagesResponse": "images=1:*Image",
        "DeleteImageRequest": "name=1 sync=2:bool",
        # leases.v1
        "Lease": "id=1 created_at=2:Timestamp labels=3:{str,str}",
        "CreateLeaseRequest": "id=1 labels=3:{str,str}",
        "CreateLeaseResponse": "lease=1:Lease",
        "DeleteLeaseRequest": "id=1 sync=2:bool",
        # version.v1
        "VersionResponse": "version=1 revision=2",
    }
)
