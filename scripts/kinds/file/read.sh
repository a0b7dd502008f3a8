# A file resource: exists, mode, owner, content (base64).
sp_file f @@path@@
