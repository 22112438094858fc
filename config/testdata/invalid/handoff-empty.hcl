service "containers" {
  listen = ["[::]:22"]
  handoff {}
}
