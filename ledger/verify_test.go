package ledger

// Every operation the tests run checks what apply found for approve
// against the posting's legs (the way approve summed them before).
func init() { verifyApplied = true }
