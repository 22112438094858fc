service "hello" {
  listen = ["31337"]
  exec {
    command    = ["/bin/cat"]
    chroot     = "srv/chroot"
    tasks_max  = 0
    memory_max = "1.5G"
  }
}

service "zero" {
  listen = ["31338"]
  exec {
    command    = ["/bin/cat"]
    memory_max = "0"
  }
}
