# Bring the project up and wait for its health checks.
cd -- @@directory@@ || exit 1
docker compose -f docker-compose.yml -p @@project@@ up -d --remove-orphans --wait --wait-timeout "${SPINE_WAIT_TIMEOUT:-120}" 2>&1
