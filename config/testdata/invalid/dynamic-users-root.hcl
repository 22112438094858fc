dynamic_users {
  range = "0-100"
}
