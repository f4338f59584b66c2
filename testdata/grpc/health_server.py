# A gRPC server on python3-grpcio (the C core) for grpc_test.go, without
# generated stubs: the health method's reply is raw protobuf bytes.
#
#   health_server.py ADDRESS READY_FILE LOG_FILE   Health/Check answers
#       NOT_SERVING (08 02) until READY_FILE exists, then SERVING (08 01);
#       every call appends a JSON line to LOG_FILE: the request as hex, the
#       metadata and the time the deadline leaves.
#   health_server.py ADDRESS                       no health service at all
#
# ADDRESS is 127.0.0.1:PORT or unix:///path. It prints "listening" once it is.
# With TLS_CERT and TLS_KEY in the environment (PEM files), the port is
# secure: TLS, on a unix socket too. With GZIP=1, replies are compressed
# with gzip, as grpc-go's RPCCompressor does.
import json
import os
import sys
import time
from concurrent import futures

import grpc


def main():
    address = sys.argv[1]
    compression = grpc.Compression.Gzip if os.environ.get("GZIP") else None
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), compression=compression)
    if len(sys.argv) > 2:
        ready_file, log_file = sys.argv[2], sys.argv[3]

        def check(request, context):
            if compression:
                context.set_compression(compression)
            with open(log_file, "a") as log:
                log.write(json.dumps({
                    "request": request.hex(),
                    "metadata": {k: v for k, v in context.invocation_metadata()},
                    "time_remaining": context.time_remaining(),
                }) + "\n")
            reply = b"\x08\x01" if os.path.exists(ready_file) else b"\x08\x02"
            if compression:
                # The C core sends a reply that gzip would not shrink
                # uncompressed: 1 KiB in an unknown field 2 makes it worth it.
                reply += b"\x12\x80\x08" + b"a" * 1024
            return reply

        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(check)})])
    else:
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            "example.Echo", {"Say": grpc.unary_unary_rpc_method_handler(lambda request, context: request)})])
    if os.environ.get("TLS_CERT"):
        with open(os.environ["TLS_KEY"], "rb") as key, open(os.environ["TLS_CERT"], "rb") as cert:
            port = server.add_secure_port(address, grpc.ssl_server_credentials([(key.read(), cert.read())]))
    else:
        port = server.add_insecure_port(address)
    if port == 0 and not address.startswith("unix:"):
        sys.exit("cannot listen on " + address)
    server.start()
    print("listening", flush=True)
    server.wait_for_termination()


main()
