service "tftp" {
  listen = ["udp://127.0.0.1:6969", "udp://[::1]:6969"]
  exec {
    accept  = false
    command = ["/usr/sbin/in.tftpd", "-s", "/srv/tftp"]
  }
}
