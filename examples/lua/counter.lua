-- A counter: `Inc` adds one, `Get` prints the count.
function init(process) return { count = 0 } end

Handlers.add("inc", { action = "Inc" }, function(msg, state)
  state.count = state.count + 1
end)

Handlers.add("get", { action = "Get" }, function(msg, state)
  print(state.count)
end)
