# The stack's folder (created and given to the user only when it does not
# exist: an existing directory is never chowned), then its docker-compose.yml.
[ -d @@directory@@ ] || install -d -o @@owner@@ -- @@directory@@
sp_backup @@path@@
sp_put @@path@@ @@mode@@ @@owner@@ @@content_b64@@
