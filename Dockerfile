FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
RUN pip install --no-cache-dir -c constraints.txt . && useradd --system idgw
COPY vendors ./vendors
COPY config ./config
ENV IDGW_VENDORS_DIR=/app/vendors
USER idgw
EXPOSE 8080
ENTRYPOINT ["idgateway"]
CMD ["serve", "--config", "/app/config/gateway.toml", "--host", "0.0.0.0"]
