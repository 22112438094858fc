#!/bin/sh
# A per-connection program: acceptd puts the connection on stdin and
# stdout, so whatever this prints goes to the client.
echo "Hello World from ${ACCEPTD_INSTANCE:-acceptd}"
