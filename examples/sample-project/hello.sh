#!/bin/sh
# Run inside the container: `alca run sh hello.sh`
echo "$GREETING (in $(pwd))"
