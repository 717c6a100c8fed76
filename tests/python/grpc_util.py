"""The gRPC side of the server tests: the official client (grpcio), with the message classes
and stubs compiled from proto/ by grpcio-tools during the test run, and `wgllm serve
--grpc-port`."""

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from conftest import REPO
from server_util import Server, free_port

PROTO_DIR = REPO / "proto"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"


class Protos:
    """generate_pb2 and its stubs, and health_pb2 (its messages only: the generated package
    `grpc.health.v1` would shadow grpcio's `grpc`, so the health call goes through a
    method-name stub)."""

    def __init__(self, out_dir):
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_DIR}", f"--python_out={out_dir}",
               f"--grpc_python_out={out_dir}", str(PROTO_DIR / "wgllm/v1/generate.proto"),
               str(PROTO_DIR / "grpc/health/v1/health.proto")]
        p = subprocess.run(cmd, capture_output=True, timeout=120)
        assert p.returncode == 0, p.stderr.decode()
        if str(out_dir) not in sys.path:
            sys.path.insert(0, str(out_dir))
        importlib.invalidate_caches()
        self.pb = importlib.import_module("wgllm.v1.generate_pb2")
        self.pb_grpc = importlib.import_module("wgllm.v1.generate_pb2_grpc")
        spec = importlib.util.spec_from_file_location("wgllm_test_health_pb2",
                                                      out_dir / "grpc" / "health" / "v1" / "health_pb2.py")
        self.health = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.health)


@pytest.fixture(scope="session")
def protos(scratch):
    return Protos(scratch / "grpc_protos")


def require_grpc_build(wgllm):
    """The gRPC tests fail (never skip) on a binary built without the gRPC API."""
    out = wgllm.run("serve", "--help")
    text = out.stdout.decode() + out.stderr.decode()
    assert "--grpc-port" in text, ("this wgllm was built without the gRPC API (configure with "
                                   "-DWGLLM_GRPC=ON; needs libgrpc-dev, libprotobuf-c-dev, protobuf-c-compiler)")


class GrpcServer(Server):
    """`wgllm serve` with its gRPC port too; .channel() opens a client channel to it."""

    def __init__(self, wgllm, model, *args, protos, **kwargs):
        require_grpc_build(wgllm)
        self.grpc_port = free_port()
        super().__init__(wgllm, model, "--grpc-port", self.grpc_port, *args, **kwargs)
        self.protos = protos
        self.target = f"127.0.0.1:{self.grpc_port}"
        self._channels = []

    def channel(self):
        ch = grpc.insecure_channel(self.target)
        grpc.channel_ready_future(ch).result(timeout=30)
        self._channels.append(ch)
        return ch

    def stub(self, channel=None):
        return self.protos.pb_grpc.GeneratorStub(channel or self.channel())

    def health(self, service="", channel=None, metadata=None):
        h = self.protos.health
        call = (channel or self.channel()).unary_unary(
            HEALTH_CHECK, request_serializer=h.HealthCheckRequest.SerializeToString,
            response_deserializer=h.HealthCheckResponse.FromString)
        return call(h.HealthCheckRequest(service=service), timeout=30, metadata=metadata)

    def close_channels(self):
        for ch in self._channels:
            ch.close()
        self._channels = []

    def stop(self, timeout=60):
        self.close_channels()
        return super().stop(timeout)

    def kill(self):
        self.close_channels()
        super().kill()
