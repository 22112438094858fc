# /etc/acceptd/nginx-on-demand.hcl for nginx-on-demand.socket + .service.
# nginx.conf: listen unix:/run/nginx/socket;

control {
  socket = "/run/acceptd-nginx/control.sock"
}

service "nginx" {
  # ListenStream=80 of nginx-on-demand.socket.
  listen          = ["80"]
  max_connections = 256
  proxy {
    backend       = "unix:///run/nginx/socket"
    # Clients wait this long for a starting nginx to listen.
    connect_retry = "30s"
    start {
      command        = ["/usr/sbin/nginx", "-g", "daemon off;"]
      stop_when_idle = "10m"
    }
  }
}
