# .rpm %postun: reload the bus; on erase ($1 = 0) drop the saved state and group alcatraz.
@COMMON@
alca_after_removal
if [ "$1" = 0 ]; then
    alca_purge
fi
