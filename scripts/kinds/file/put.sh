# Write a file resource atomically, keeping the old one under $BK.
sp_backup @@path@@
sp_put @@path@@ @@mode@@ @@owner@@ @@content_b64@@
