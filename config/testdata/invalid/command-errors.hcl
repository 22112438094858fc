service "notfound" {
  listen = ["31337"]
  exec { command = ["nosuchprogram", "-x"] }
}

service "empty" {
  listen = ["31338"]
  exec { command = [] }
}

service "string" {
  listen = ["31339"]
  exec { command = "/bin/cat" }
}

service "relative" {
  listen = ["31340"]
  exec { command = ["./bin/cat"] }
}

service "blank" {
  listen = ["31341"]
  exec { command = ["", "x"] }
}
