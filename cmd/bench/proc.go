package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clkTck is USER_HZ: /proc reports CPU time in these ticks (100 on every Linux this runs on).
const clkTck = 100

// procCPU is a process's user+system CPU time in seconds, from /proc/<pid>/stat.
func procCPU(pid int) (float64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name is in parentheses and may hold spaces; fields count from after it.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clkTck, true
}

// procMemKiB reads VmRSS and VmHWM (the peak resident set) from /proc/<pid>/status.
func procMemKiB(pid int) (rss, hwm int64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	return rss, hwm
}

// machineCPU is the whole machine's busy, stolen and total CPU seconds since boot, from /proc/stat. Steal
// is time this VM wanted a CPU and the hypervisor gave it to someone else.
func machineCPU() (busy, steal, total float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, 0
	}
	var v [8]float64 // user nice system idle iowait irq softirq steal (guest time is already in user)
	for i := range v {
		v[i], _ = strconv.ParseFloat(f[i+1], 64)
		total += v[i]
	}
	busy = v[0] + v[1] + v[2] + v[5] + v[6]
	return busy / clkTck, v[7] / clkTck, total / clkTck
}

// cpuMeter splits a run's CPU between billingd, the scratch database's backends, this process (pgsim and
// the load generator) and everything else on the (shared) machine.
type cpuMeter struct {
	billingd       int
	busy0, total0  float64
	steal0         float64
	self0, billd0  float64
	backends       map[int][2]float64 // pid -> first and latest CPU seconds
	preexisting    map[int]bool
	lastBillingdCP float64
	lastObserved   time.Time
}

func newCPUMeter(billingdPID int, backendPIDs []int) *cpuMeter {
	m := &cpuMeter{billingd: billingdPID, backends: map[int][2]float64{}, preexisting: map[int]bool{}}
	m.busy0, m.steal0, m.total0 = machineCPU()
	m.self0, _ = procCPU(os.Getpid())
	m.billd0, _ = procCPU(billingdPID)
	m.lastBillingdCP, m.lastObserved = m.billd0, time.Now()
	for _, pid := range backendPIDs {
		if c, ok := procCPU(pid); ok {
			m.backends[pid] = [2]float64{c, c}
			m.preexisting[pid] = true
		}
	}
	return m
}

// observe records the latest CPU of the backends now serving the database. A backend first seen after
// the start was started during the run, so all of its CPU counts.
func (m *cpuMeter) observe(backendPIDs []int) {
	for _, pid := range backendPIDs {
		c, ok := procCPU(pid)
		if !ok {
			continue
		}
		if b, seen := m.backends[pid]; seen {
			m.backends[pid] = [2]float64{b[0], c}
		} else {
			m.backends[pid] = [2]float64{0, c}
		}
	}
	if c, ok := procCPU(m.billingd); ok {
		m.lastBillingdCP = c
	}
	m.lastObserved = time.Now()
}

// CPUSplit is where a run's CPU went, in cores (CPU seconds per wall second).
type CPUSplit struct {
	MachineCores int     `json:"machine_cores"`
	MachineBusy  float64 `json:"machine_busy_cores"`
	Billingd     float64 `json:"billingd_cores"`
	Postgres     float64 `json:"postgres_backends_cores"`
	BenchProcess float64 `json:"bench_process_cores"`
	OtherOnHost  float64 `json:"other_cores"`
	BillingdCPU  float64 `json:"billingd_cpu_seconds"`
	PostgresCPU  float64 `json:"postgres_cpu_seconds"`
	WallSeconds  float64 `json:"wall_seconds"`
	BusyPercent  float64 `json:"machine_busy_percent"`
	Steal        float64 `json:"steal_cores"`
}

func (m *cpuMeter) split(wall float64, cores int) CPUSplit {
	busy, steal, total := machineCPU()
	self, _ := procCPU(os.Getpid())
	var pg float64
	for _, b := range m.backends {
		pg += b[1] - b[0]
	}
	s := CPUSplit{MachineCores: cores, WallSeconds: wall}
	if wall <= 0 {
		return s
	}
	s.BillingdCPU = m.lastBillingdCP - m.billd0
	s.PostgresCPU = pg
	s.Billingd = s.BillingdCPU / wall
	s.Postgres = pg / wall
	s.BenchProcess = (self - m.self0) / wall
	s.MachineBusy = (busy - m.busy0) / wall
	s.Steal = (steal - m.steal0) / wall
	if dt := total - m.total0; dt > 0 {
		s.BusyPercent = 100 * (busy - m.busy0) / dt
	}
	s.OtherOnHost = max(0, s.MachineBusy-s.Billingd-s.Postgres-s.BenchProcess)
	return s
}
