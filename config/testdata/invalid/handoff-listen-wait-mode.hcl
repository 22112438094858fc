service "inside" {
  listen = ["handoff:/run/containers/one/accept.sock"]
  exec {
    accept  = false
    pass    = "listen_fds"
    command = ["/usr/sbin/sshd", "-i"]
  }
}
