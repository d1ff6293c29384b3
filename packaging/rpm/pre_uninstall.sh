# .rpm %preun: stop the daemon; on erase ($1 = 0, not upgrade) delete every alca- table and
# undo the FUSE host steps.
@COMMON@
alca_stop_daemon
if [ "$1" = 0 ]; then
    alca_delete_tables
    alca_fuse_revert
fi
