package main

import "github.com/cardswitch/cardswitch/hsm/hsmcli"

func init() { register("hsm", hsmcli.Run) }
