control {
  socket = "127.0.0.1:9000"
  mode   = "0644x"
  owner  = "root"
}
