# One image for the hub and every engine: `starmesh engine <name>` chooses which.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . && useradd --create-home starmesh
USER starmesh
# An engine stops cleanly on SIGTERM: what it fetched and did not finish stays claimable.
STOPSIGNAL SIGTERM
CMD ["starmesh", "--help"]
