# One image for every service; compose picks the service with `cqo serve NAME`.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml requirements.lock README.md ./
COPY shared ./shared
COPY services ./services
COPY cqo ./cqo
RUN pip install --no-cache-dir "pip==26.3" && pip install --no-cache-dir -c requirements.lock .
ENTRYPOINT ["cqo", "serve"]
