FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
RUN pip install --no-cache-dir -c constraints.txt . && useradd --system idgw \
    && mkdir -p /app/var && chown idgw /app/var
COPY vendors ./vendors
ENV IDGW_VENDORS_DIR=/app/vendors
# No config is baked in (the example's keys are public): mount yours at /app/config.
VOLUME ["/app/config", "/app/var"]
USER idgw
EXPOSE 8080
ENTRYPOINT ["idgateway"]
CMD ["serve", "--config", "/app/config/gateway.toml", "--host", "0.0.0.0"]
