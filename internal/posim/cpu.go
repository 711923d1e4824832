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

// CPUMeter measures, over a load, the CPU time of a server process (when
// its PID is known) and of posim itself: the load generator shares the
// machine's cores with the server, so its CPU per transaction is part of
// what a closed loop's throughput costs.
type CPUMeter struct {
	pid                int
	server, self       int64
	serverErr, selfErr error
}

// StartCPU samples both processes now; pid 0 measures posim alone.
func StartCPU(pid int) *CPUMeter {
	m := &CPUMeter{pid: pid}
	if pid > 0 {
		m.server, m.serverErr = ProcessCPUTicks(pid)
	}
	m.self, m.selfErr = ProcessCPUTicks(os.Getpid())
	return m
}

// Stop returns the clock ticks each process used since StartCPU: -1 for
// one that could not be read (server is -1 without a PID).
func (m *CPUMeter) Stop() (server, self int64) {
	server, self = -1, -1
	if m.pid > 0 {
		if after, err := ProcessCPUTicks(m.pid); err == nil && m.serverErr == nil {
			server = after - m.server
		}
	}
	if after, err := ProcessCPUTicks(os.Getpid()); err == nil && m.selfErr == nil {
		self = after - m.self
	}
	return server, self
}
