// Package secretflag is a command-line flag for a secret (an admin token)
// that may come from the environment instead, so that it stays out of ps
// and shell history. Unlike a flag whose default is read from the
// environment, it never prints its value: usage and errors show only the
// variable's name.
package secretflag

import (
	"flag"
	"os"
)

// Value is the flag; Get resolves it after parsing.
type Value struct {
	env string
	v   string
}

// New registers flag name on fs, falling back to environment variable env.
func New(fs *flag.FlagSet, name, env, usage string) *Value {
	s := &Value{env: env}
	fs.Var(s, name, usage+" (default $"+env+")")
	return s
}

// String is what flag's usage shows as the default: nothing, ever.
func (s *Value) String() string { return "" }

// Set takes the value given on the command line.
func (s *Value) Set(v string) error { s.v = v; return nil }

// Get is the flag's value if given, else the environment variable's.
func (s *Value) Get() string {
	if s.v != "" {
		return s.v
	}
	return os.Getenv(s.env)
}
