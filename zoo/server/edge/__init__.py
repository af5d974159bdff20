"""The edge: what faces the network before a front end sees a request.

The HTTP server (uvicorn, with a request-arrival deadline) and its ASGI application that
reads bodies within the memory budget and hands each request to the REST front end of its
protocol (rest_app); the gRPC server with its services, health and reflection
(grpc_server); TLS, gRPC health, and the memory budget for requests in flight.
"""
