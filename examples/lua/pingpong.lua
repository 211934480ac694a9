-- One half of a ping-pong pair (both processes run this script): `Start`
-- pings the `peer` named in the message; a `Ping` is answered with a
-- `Pong` to whoever sent it (`from`: the pushing process). Both count.
function init(process) return { pings = 0, pongs = 0 } end

Handlers.add("start", { action = "Start" }, function(msg, state)
  Send({ target = msg.peer, action = "Ping" })
end)

Handlers.add("ping", { action = "Ping" }, function(msg, state)
  state.pings = state.pings + 1
  Send({ target = msg.from, action = "Pong" })
end)

Handlers.add("pong", { action = "Pong" }, function(msg, state)
  state.pongs = state.pongs + 1
end)
