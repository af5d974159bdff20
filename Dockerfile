# The zoo's trainer image: Python, TensorFlow and this package; `zoo` is the entry point.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY zoo ./zoo
RUN pip install --no-cache-dir .
ENV ZOO_DATA_DIR=/data
ENTRYPOINT ["zoo"]
CMD ["list"]
