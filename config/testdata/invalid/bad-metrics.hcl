metrics {
  listen = "udp://127.0.0.1:9464"
}

metrics {
  listen = "127.0.0.1:9465"
}
