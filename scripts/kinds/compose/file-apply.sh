# The stack's folder, then its docker-compose.yml.
install -d -o @@owner@@ -- @@directory@@
sp_backup @@path@@
sp_put @@path@@ @@mode@@ @@owner@@ @@content_b64@@
