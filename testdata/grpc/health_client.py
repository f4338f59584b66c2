# Calls grpc.health.v1.Health/Check once with python3-grpcio, raw bytes in
# and out, to check that grpc_test.go's fake servers fool a real client
# the way they fool portpatrol. Prints "OK <reply as hex>" or
# "ERROR <status code name> <details>". With TLS_CA in the environment (a
# PEM file), the channel is TLS trusting that CA alone.
import os
import sys

import grpc

address, request = sys.argv[1], bytes.fromhex(sys.argv[2]) if len(sys.argv) > 2 else b""
if os.environ.get("TLS_CA"):
    with open(os.environ["TLS_CA"], "rb") as ca:
        channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(ca.read()))
else:
    channel = grpc.insecure_channel(address)
with channel:
    check = channel.unary_unary("/grpc.health.v1.Health/Check")
    try:
        print("OK", check(request, timeout=3).hex())
    except grpc.RpcError as e:
        print("ERROR", e.code().name, e.details())
