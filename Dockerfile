FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY chat ./chat
COPY connectors ./connectors
COPY bots ./bots
COPY parley_client ./parley_client
RUN pip install --no-cache-dir .
ENV PARLEY_HOST=0.0.0.0
EXPOSE 8000
CMD ["parley", "serve"]
