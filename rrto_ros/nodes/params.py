# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The parameters each node declares, as plain data (no rclpy).

The nodes declare exactly these (with a ParameterDescriptor built from each entry); the
launch plan and the tests use the same tables to check that config/*.yaml and the launch
files name only parameters that exist. Defaults come from the cores' config dataclasses,
so a node started without a params file behaves like the ROS-free CLI; but for security,
which is ``curve`` with the key files of rrto_ros/protocol/keys.py (the CLIs' defaults
too), where the cores' own default is ``open`` for in-process use.
"""

from __future__ import annotations

from dataclasses import dataclass
import difflib
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

from rrto_ros.client.compression import SETTINGS
from rrto_ros.client.config import ClientConfig, MODES
from rrto_ros.protocol import keys
from rrto_ros.protocol.curve import DEFAULT_SECURITY, SECURITY_MODES
from rrto_ros.server.server import ServerConfig
from rrto_ros.tracking.follower import FollowerConfig
from rrto_ros.tracking.kalman import KalmanConfig
from rrto_ros.tracking.scene import SceneConfig
from rrto_ros.tracking.tracker import TrackerConfig
from rrto_ros.tracking.unproject import UnprojectConfig

CLIENT_NODE = 'rrto_client'
SERVER_NODE = 'rrto_server'

Default = Union[str, int, float, bool, Callable[[], Any]]


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Default               # a value, or a function computing it at declare time
    description: str
    read_only: bool = False        # True where a change needs a restart of the node
    int_range: Optional[Tuple[int, int]] = None
    float_range: Optional[Tuple[float, float]] = None
    constraints: str = ''

    def default_value(self) -> Any:
        return self.default() if callable(self.default) else self.default


_RESTART = ' Read-only: set it in the params file or launch arguments, then restart the node.'
_CLIENT = ClientConfig()
_SERVER = ServerConfig()


def _modes_text() -> str:
    return 'one of ' + ', '.join(MODES)


def _security(side: str) -> ParamSpec:
    keys_ = ('curve_secret_key_file and curve_allowed_clients_dir' if side == 'server' else
             'curve_secret_key_file and curve_server_key_file')
    return ParamSpec('security', DEFAULT_SECURITY,
                     'curve: the link is encrypted and the server admits only robots whose '
                     f'public keys are in its allow-list ({keys_}; rrto-keys makes them); '
                     'open: no authentication and no encryption (logged as a warning at '
                     'every start).'
                     + _RESTART, read_only=True, constraints=' or '.join(SECURITY_MODES))


CLIENT_PARAMS: Tuple[ParamSpec, ...] = (
    ParamSpec('server_endpoint', _CLIENT.server_endpoint,
              'ZeroMQ endpoint of the rrto server node on the edge GPU machine, e.g. '
              'tcp://edge-host:5555.' + _RESTART, read_only=True,
              constraints='tcp://HOST:PORT, ipc://PATH'),
    ParamSpec('agent_socket', _CLIENT.agent_socket,
              'UNIX socket where interposed apps (LD_PRELOAD=librrto_cuda.so) reach this node; '
              'apps find it through RRTO_AGENT_SOCKET. Empty: $XDG_RUNTIME_DIR/rrto/agent.sock, '
              "else /tmp/rrto-<uid>/agent.sock (the interposer's default too). Its directory "
              "must be private (mode 0700, this user's); only processes of this user or root "
              'are served.' + _RESTART, read_only=True),
    ParamSpec('mode', _CLIENT.mode,
              'How CUDA calls are forwarded: rpc (every call waits), pipelined (calls whose '
              'result the app does not need are not waited for), replay (record the '
              'inference sequence, then one blocking round trip per inference). Changes '
              'take effect for running sessions at their next call.',
              constraints=_modes_text()),
    ParamSpec('record_window', getattr(_CLIENT, 'record_window', 3),
              'Consecutive repetitions of an inference sequence required before it is '
              'replayed. Changes take effect for running sessions.',
              int_range=(1, 1000), constraints='>= 1'),
    ParamSpec('connect_timeout_s', _CLIENT.connect_timeout_s,
              'Seconds to wait for the server to accept a new session.' + _RESTART,
              read_only=True, float_range=(0.01, 600.0)),
    ParamSpec('server_timeout_s', _CLIENT.server_timeout_s,
              'Seconds without an answer after which the server counts as lost and the '
              "app's CUDA calls fail instead of hanging." + _RESTART,
              read_only=True, float_range=(0.01, 3600.0)),
    ParamSpec('heartbeat_s', _CLIENT.heartbeat_s,
              'Seconds between liveness probes while an app is idle.' + _RESTART,
              read_only=True, float_range=(0.01, 600.0)),
    ParamSpec('diagnostics_period_s', 1.0,
              'Seconds between DiagnosticArray messages on /diagnostics.' + _RESTART,
              read_only=True, float_range=(0.05, 60.0)),
    _security('client'),
    ParamSpec('curve_secret_key_file', keys.robot_secret_file(),
              "This robot's CURVE certificate (secret key file, `rrto-keys init-robot NAME` "
              'makes it); security curve.' + _RESTART, read_only=True),
    ParamSpec('curve_server_key_file', keys.server_public_file(),
              "The server's CURVE public key file (a copy of the edge's server.key); "
              'security curve.' + _RESTART, read_only=True),
    ParamSpec('replay_lane', _CLIENT.replay_lane,
              "Let apps send each replayed inference's request on the server's replay lane "
              '(a TCP connection from the app straight to the server, ~0.6 ms faster per '
              'inference at the edge, encrypted with a per-session key) when the server '
              'offers one; otherwise replays go through this node.'
              + _RESTART, read_only=True),
    ParamSpec('lane_endpoint', _CLIENT.lane_endpoint,
              "Where apps reach the server's replay lane, tcp://HOST:PORT; empty: the host "
              'of server_endpoint and the port the server announces (set it behind NAT or a '
              'port forward).' + _RESTART, read_only=True, constraints="'' or tcp://HOST:PORT"),
    ParamSpec('compression', _CLIENT.compression,
              'Lossless compression of large uploads (copies to the device, replay inputs) '
              'on their way to the server: auto compresses where the measured rule says it '
              'pays (wire time saved > compress + decompress time; on at edge and cloud '
              'bandwidths, off on fast links), off never, zstd or lz4 always. Outputs are '
              'bit-identical either way.' + _RESTART, read_only=True,
              constraints=', '.join(SETTINGS)),
    ParamSpec('link_mbit', _CLIENT.link_mbit,
              "The link's bandwidth to the server in Mbit/s, for compression auto; 0: "
              'measured from the large uploads.' + _RESTART, read_only=True,
              float_range=(0.0, 1e6)),
    ParamSpec('content_min_bytes', _CLIENT.content_min_bytes,
              'Copies of at least this many bytes into a device address written for the '
              'first time (weights) travel as their content key when the server holds them '
              'from an earlier start of the same app; 0: off.' + _RESTART, read_only=True,
              int_range=(0, 1 << 40)),
)


SERVER_PARAMS: Tuple[ParamSpec, ...] = (
    ParamSpec('bind_endpoint', _SERVER.bind_endpoint,
              'ZeroMQ endpoint to listen on for rrto client nodes, e.g. tcp://*:5555.'
              + _RESTART, read_only=True, constraints='tcp://*:PORT, tcp://ADDR:PORT'),
    ParamSpec('backend', 'auto',
              'Where CUDA work runs: cuda (this GPU, via cuda-python), emu (a CPU stand-in '
              'for machines without a GPU) or auto (cuda when a GPU is usable here, else '
              'emu; the log says why).' + _RESTART, read_only=True,
              constraints='auto, cuda or emu'),
    ParamSpec('device', _SERVER.device, 'CUDA device index for the cuda backend.' + _RESTART,
              read_only=True, int_range=(0, 63)),
    ParamSpec('module_cache_dir', _SERVER.module_cache_dir or '',
              'Disk cache of shipped fatbins (content-addressed); empty: memory only.'
              + _RESTART, read_only=True),
    ParamSpec('max_sessions', _SERVER.max_sessions,
              'Most app sessions served at once; more are refused with a clear error. '
              'Changes apply to the next session that opens.', int_range=(1, 4096)),
    ParamSpec('max_sessions_per_client', _SERVER.max_sessions_per_client,
              'Most sessions one robot (one CURVE client key) holds at once; its unused ones '
              'give way to its new one first. Security open knows no robots: no cap. Changes '
              'apply to the next session that opens.', int_range=(1, 4096)),
    ParamSpec('session_timeout_s', _SERVER.session_timeout_s,
              'Seconds without a message (not even a heartbeat) after which a session is '
              'dropped and its GPU memory freed. Changes apply at once.',
              float_range=(0.5, 86400.0)),
    ParamSpec('unused_session_timeout_s', _SERVER.unused_session_timeout_s,
              'Seconds a session that has done no CUDA work since its hello (heartbeats do '
              'not count) is kept; such a session also gives its place to a new app when '
              'max_sessions are open. Changes apply at once.', float_range=(0.1, 86400.0)),
    ParamSpec('max_message_bytes', _SERVER.max_message_bytes,
              'Largest payload of one request; ZeroMQ drops a client that sends a larger '
              'frame before it is read, and clients are told the limit. The default fits '
              "the interposer's 64 MiB copies; modules are uploaded in chunks of this size."
              + _RESTART, read_only=True, int_range=(64 << 10, 1 << 40)),
    ParamSpec('max_module_bytes', _SERVER.max_module_bytes,
              'Largest module (fatbin) a session may load.' + _RESTART, read_only=True,
              int_range=(1, 1 << 40)),
    ParamSpec('session_memory_bytes', _SERVER.session_memory_bytes,
              'Device memory one session may allocate (cudaMalloc beyond it fails with '
              'cudaErrorMemoryAllocation); 0: no cap.' + _RESTART, read_only=True,
              int_range=(0, 1 << 50)),
    ParamSpec('module_cache_mem_bytes', _SERVER.module_cache_mem_bytes,
              'Bytes of the content store (shipped fatbins, weights uploaded by content '
              'key) kept in memory; least recently used leave first, the disk cache keeps '
              'them.' + _RESTART, read_only=True, int_range=(0, 1 << 40)),
    ParamSpec('module_cache_disk_bytes', _SERVER.module_cache_disk_bytes,
              'Bytes of the content store kept in module_cache_dir; least recently used '
              'files are removed beyond it.' + _RESTART, read_only=True,
              int_range=(0, 1 << 50)),
    ParamSpec('diagnostics_period_s', 1.0,
              'Seconds between DiagnosticArray messages on /diagnostics.' + _RESTART,
              read_only=True, float_range=(0.05, 60.0)),
    _security('server'),
    ParamSpec('curve_secret_key_file', keys.server_secret_file(),
              "The server's CURVE certificate (secret key file, `rrto-keys init-server` "
              'makes it); security curve.' + _RESTART, read_only=True),
    ParamSpec('curve_allowed_clients_dir', keys.allowed_clients_dir(),
              'Directory of the public key files (NAME.key) of the robots this server '
              'admits (`rrto-keys allow NAME.key` adds one; read again when it changes); '
              'security curve.' + _RESTART, read_only=True),
    ParamSpec('lane_port', _SERVER.lane_port,
              'TCP port of the replay lane, offered to clients next to bind_endpoint: 0 any '
              'free port, -1 none (replays then go over ZeroMQ). Encrypted (libsodium, PyNaCl).'
              + _RESTART, read_only=True, int_range=(-1, 65535)),
)

NODE_PARAMS: Dict[str, Tuple[ParamSpec, ...]] = {
    CLIENT_NODE: CLIENT_PARAMS,
    SERVER_NODE: SERVER_PARAMS,
}


def names(specs: Tuple[ParamSpec, ...]) -> Tuple[str, ...]:
    return tuple(s.name for s in specs)


def unknown_names_message(node: str, unknown: Sequence[str], known: Sequence[str]) -> str:
    """'rrto_client has no parameter record_windw (did you mean record_window?)', with the
    closest known name for each misspelt one."""
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        parts.append(f'{name} (did you mean {close[0]}?)' if close else name)
    return (f'{node} has no parameter {", ".join(parts)}; it has: {", ".join(known)}')


# ----------------------------------------------------------------- people following
# The pipeline's nodes (rrto_ros/tracking/ holds their logic; defaults from its configs).

CAMERA_NODE = 'rrto_camera'
POSE_NODE = 'rrto_pose'
TRACKER_NODE = 'rrto_tracker'
FOLLOWER_NODE = 'rrto_follower'
CAMERA_SOURCES = ('synthetic', 'recorded')
POSE_SOURCES = ('model', 'ground_truth')
MODEL_SIZES = ('s', 'm', 'l')

_SCENE = SceneConfig()
_UNPROJECT = UnprojectConfig()
_KALMAN = KalmanConfig()
_TRACKER = TrackerConfig()
_FOLLOWER = FollowerConfig()
_LIVE = ' Can be changed at run time.'


def _diagnostics_period() -> ParamSpec:
    return ParamSpec('diagnostics_period_s', 1.0, 'Seconds between DiagnosticArray messages '
                     'on /diagnostics.' + _RESTART, read_only=True, float_range=(0.05, 60.0))


CAMERA_PARAMS: Tuple[ParamSpec, ...] = (
    ParamSpec('source', 'synthetic',
              'Where frames come from: synthetic (a person-like figure walking in front of '
              'the camera, with ground-truth keypoints) or recorded (the sequence directory '
              'in recorded_path, layout in rrto_ros/tracking/recorded.py).' + _RESTART,
              read_only=True, constraints='synthetic or recorded'),
    ParamSpec('recorded_path', '', 'Directory of a recorded sequence (camera_info.yaml + '
              'NNNNNN.npz), for source recorded.' + _RESTART, read_only=True),
    ParamSpec('loop', True, 'recorded: start again after the last frame (else stop '
              'publishing).' + _RESTART, read_only=True),
    ParamSpec('rate_hz', _SCENE.fps, 'Frames per second published.' + _RESTART,
              read_only=True, float_range=(0.1, 120.0)),
    ParamSpec('width', _SCENE.width, 'synthetic: image width in pixels.' + _RESTART,
              read_only=True, int_range=(32, 4096)),
    ParamSpec('height', _SCENE.height, 'synthetic: image height in pixels.' + _RESTART,
              read_only=True, int_range=(32, 4096)),
    ParamSpec('fx', _SCENE.fx, 'synthetic: focal length in pixels (fy = fx).' + _RESTART,
              read_only=True, float_range=(1.0, 20000.0)),
    ParamSpec('seed', _SCENE.seed, 'synthetic: the scene (path, colours, sensor noise) is a '
              'function of the seed.' + _RESTART, read_only=True, int_range=(0, 2 ** 31 - 1)),
    ParamSpec('frame_id', '', "frame_id of the published headers; empty: the source's "
              '(synthetic: camera_color_optical_frame; recorded: its camera_info.yaml).'
              + _RESTART, read_only=True),
    ParamSpec('publish_ground_truth', True, 'Publish the ground-truth poses on '
              'ground_truth/poses when the source has them.' + _RESTART, read_only=True),
    _diagnostics_period(),
)

POSE_PARAMS: Tuple[ParamSpec, ...] = (
    ParamSpec('source', 'model',
              'model: run the KAPAO network on each image (letterbox, network, '
              'post-processing); ground_truth: republish ground_truth/poses from the camera '
              "node (no network; the only source that works with the rrto server's emu "
              'backend).' + _RESTART, read_only=True, constraints='model or ground_truth'),
    ParamSpec('model_size', 's', 'KAPAO architecture: s, m or l.' + _RESTART, read_only=True,
              constraints='s, m or l'),
    ParamSpec('weights', '', 'Path of the weights (our state_dict format; convert a KAPAO '
              'checkpoint first). Empty: random initialisation, reported loudly: the poses '
              'are then meaningless.' + _RESTART, read_only=True),
    ParamSpec('img_size', 640, 'Network input size (the letterbox), a multiple of 64.'
              + _RESTART, read_only=True, int_range=(64, 4096)),
    ParamSpec('device', 'cuda', 'torch device of the network (cuda, cuda:1, cpu). Under '
              'LD_PRELOAD=librrto_cuda.so, cuda is the edge GPU.' + _RESTART, read_only=True),
    ParamSpec('draw_debug', True, 'Publish debug_image (the skeletons drawn on the image) '
              'while someone subscribes to it.' + _LIVE),
    ParamSpec('draw_min_confidence', 0.3, 'Keypoints below this confidence are not drawn.'
              + _LIVE, float_range=(0.0, 1.0)),
    ParamSpec('ground_truth_slop_s', 0.02, 'ground_truth: how far apart (seconds) the stamps '
              'of an image and its ground-truth poses may be.' + _LIVE,
              float_range=(0.0, 1.0)),
    _diagnostics_period(),
)

TRACKER_PARAMS: Tuple[ParamSpec, ...] = (
    ParamSpec('frame_id', '', "frame_id of target; empty: the poses' (the camera's optical "
              'frame).' + _RESTART, read_only=True),
    ParamSpec('slop_s', 0.05, 'How far apart (seconds) the stamps of poses and depth may be '
              'to be paired.' + _LIVE, float_range=(0.0, 1.0)),
    ParamSpec('queue_size', 30, 'Depth images (and poses) kept while waiting for their '
              "partner: at least the pose node's latency times the frame rate." + _RESTART,
              read_only=True, int_range=(1, 1000)),
    ParamSpec('window_px', _UNPROJECT.window_px, 'Half-size of the depth window around each '
              'torso keypoint.' + _LIVE, int_range=(0, 50)),
    ParamSpec('min_confidence', _UNPROJECT.min_confidence, 'Torso keypoints below this '
              'confidence are not used.' + _LIVE, float_range=(0.0, 1.0)),
    ParamSpec('min_depth_m', _UNPROJECT.min_depth_m, 'Depths below this are ignored.' + _LIVE,
              float_range=(0.0, 100.0)),
    ParamSpec('max_depth_m', _UNPROJECT.max_depth_m, 'Depths above this are ignored.' + _LIVE,
              float_range=(0.0, 100.0)),
    ParamSpec('depth_scale_m', _UNPROJECT.depth_scale_m, 'Metres per unit of a 16UC1 depth '
              'image (0.001: millimetres, the ROS convention).' + _LIVE,
              float_range=(1e-6, 1.0)),
    ParamSpec('gate_m', _TRACKER.gate_m, 'A person farther than this from the prediction is '
              'not the one followed.' + _LIVE, float_range=(0.01, 100.0)),
    ParamSpec('accel_std', _KALMAN.accel_std, 'Kalman filter: process noise, m/s^2.' + _LIVE,
              float_range=(1e-4, 100.0)),
    ParamSpec('measurement_std', _KALMAN.measurement_std, 'Kalman filter: measurement noise, '
              'm.' + _LIVE, float_range=(1e-4, 10.0)),
    ParamSpec('lost_after_s', _KALMAN.lost_after_s, 'Predict through losses up to this long; '
              'then the person is lost and target is no longer published.' + _LIVE,
              float_range=(0.01, 60.0)),
    _diagnostics_period(),
)

FOLLOWER_PARAMS: Tuple[ParamSpec, ...] = (
    ParamSpec('standoff_m', _FOLLOWER.standoff_m, 'Distance to keep from the person.' + _LIVE,
              float_range=(0.1, 20.0)),
    ParamSpec('distance_tolerance_m', _FOLLOWER.distance_tolerance_m, 'No forward motion '
              'within this of the stand-off.' + _LIVE, float_range=(0.0, 5.0)),
    ParamSpec('linear_gain', _FOLLOWER.linear_gain, 'linear.x per metre of distance error, '
              '1/s.' + _LIVE, float_range=(0.01, 10.0)),
    ParamSpec('angular_gain', _FOLLOWER.angular_gain, 'angular.z per radian of bearing, 1/s.'
              + _LIVE, float_range=(0.01, 10.0)),
    ParamSpec('max_linear_mps', _FOLLOWER.max_linear_mps, 'Forward speed limit.' + _LIVE,
              float_range=(0.01, 5.0)),
    ParamSpec('max_reverse_mps', _FOLLOWER.max_reverse_mps, 'Backward speed limit (0: never '
              'back away).' + _LIVE, float_range=(0.0, 5.0)),
    ParamSpec('max_angular_rps', _FOLLOWER.max_angular_rps, 'Turn-rate limit, rad/s.' + _LIVE,
              float_range=(0.01, 10.0)),
    ParamSpec('max_linear_accel', _FOLLOWER.max_linear_accel, 'linear.x changes by at most '
              'this per second, m/s^2.' + _LIVE, float_range=(0.01, 50.0)),
    ParamSpec('max_angular_accel', _FOLLOWER.max_angular_accel, 'angular.z changes by at most '
              'this per second, rad/s^2.' + _LIVE, float_range=(0.01, 100.0)),
    ParamSpec('lost_timeout_s', _FOLLOWER.lost_timeout_s, 'No target for this long: publish '
              'a zero Twist (stop).' + _LIVE, float_range=(0.01, 60.0)),
    ParamSpec('frame_convention', _FOLLOWER.frame_convention, 'optical: target is in a '
              'camera optical frame (z forward, x right); base: in a base_link-like frame '
              '(x forward, y left).' + _LIVE, constraints='optical or base'),
    ParamSpec('control_rate_hz', 20.0, 'cmd_vel messages per second.' + _RESTART,
              read_only=True, float_range=(1.0, 500.0)),
    _diagnostics_period(),
)

NODE_PARAMS.update({CAMERA_NODE: CAMERA_PARAMS, POSE_NODE: POSE_PARAMS,
                    TRACKER_NODE: TRACKER_PARAMS, FOLLOWER_NODE: FOLLOWER_PARAMS})
