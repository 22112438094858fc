service "hello" {
  listen = ["31337"]
  exec {
    command = ["/bin/cat"]
    limits {
      nofile  = "4096:1024"
      nproc   = "lots"
      files   = 10
      as      = "1G:infinity"
      cpu     = "10K"
      core    = -1
      memlock = [1]
    }
  }
}
