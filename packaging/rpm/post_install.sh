# .rpm %post: group alcatraz, state directory, units enabled, bus policy reloaded.
@COMMON@
alca_configure
