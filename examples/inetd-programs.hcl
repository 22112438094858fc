# Real inetd-mode programs from Debian packages under acceptd (the
# integration tests run both): busybox's web server and git's daemon.
# `acceptd check` reports "Program not found" for whichever is not
# installed (apt-get install busybox git).
#
#   go run ./cmd/acceptd run -config examples/inetd-programs.hcl
#   curl http://127.0.0.1:10080/
#   git clone git://127.0.0.1:10418/REPO.git

control {
  socket = "/tmp/acceptd-inetd/control.sock"
}

service "httpd" {
  listen          = ["127.0.0.1:10080"]
  max_connections = 128
  exec {
    # -i: serve the one connection on stdin/stdout, then exit.
    command = ["busybox", "httpd", "-i", "-h", "/var/www/html"]
    stderr  = "null"
  }
}

service "git" {
  listen = ["127.0.0.1:10418"]
  exec {
    command     = ["git", "daemon", "--inetd", "--export-all", "--base-path=/srv/git"]
    environment = { HOME = "/nonexistent", GIT_CONFIG_NOSYSTEM = "1" }
  }
}
