-- A wallet process: `Send-Transfer` (from its owner) asks the ledger named
-- in the message to transfer; the ledger's notices are counted.
function init(process) return { credits = 0, debits = 0 } end

Handlers.add("send", { action = "Send-Transfer" }, function(msg, state)
  Send({ target = msg.ledger, action = "Transfer",
         recipient = msg.recipient, quantity = msg.quantity })
end)

Handlers.add("credit", { action = "Credit-Notice" }, function(msg, state)
  state.credits = state.credits + 1
end)

Handlers.add("debit", { action = "Debit-Notice" }, function(msg, state)
  state.debits = state.debits + 1
end)
