# Two images from one file:
#   docker build --target trainer -t keras-zoo-trainer .      the trainer: `zoo` is the entry point
#   docker build --target zoo-serve -t keras-zoo-serve .      `zoo serve` with TF Serving's flags
FROM python:3.11-slim AS trainer
WORKDIR /app
COPY pyproject.toml README.md ./
COPY zoo ./zoo
RUN pip install --no-cache-dir .
ENV ZOO_DATA_DIR=/data
ENTRYPOINT ["zoo"]
CMD ["list"]

# The embedded server: the same models/ layout and API as tensorflow/serving, plus TLS on both
# ports, gRPC health (also alone, in plaintext, on 8502 for probes) and a drain on SIGTERM.
FROM trainer AS zoo-serve
EXPOSE 8500 8501 8502
ENTRYPOINT ["zoo", "serve", "--bind_address=0.0.0.0", "--grpc_health_port=8502"]
CMD ["--model_config_file=/models/models.config"]
