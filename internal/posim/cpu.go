package posim

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ProcessCPUTicks returns utime+stime of a process in clock ticks, from
// /proc/PID/stat (Linux). posim samples the switch with it right after
// sign-on and at the end of the load, so that CPU per transaction leaves
// out start-up and provisioning.
func ProcessCPUTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatTicks(string(b))
}

// parseStatTicks reads fields 14 and 15 (utime, stime) of proc(5) stat.
// The command name (field 2) is in parentheses and may hold spaces, so
// fields are counted after its closing parenthesis.
func parseStatTicks(stat string) (int64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("proc stat without command name")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime is field 14 → f[11], stime f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("proc stat with %d fields", len(f)+2)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("proc stat utime %q stime %q", f[11], f[12])
	}
	return u + s, nil
}
