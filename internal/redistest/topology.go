package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A Cluster is a Redis Cluster of three masters with one replica each,
// started for a test on free loopback ports and stopped when it ends. Its
// nodes time out after a second (cluster-node-timeout 1000), so a killed
// master's replica takes over a few seconds later, and the cluster serves
// the slots it still has meanwhile (cluster-require-full-coverage no).
type Cluster struct {
	Nodes []*Server
	t     testing.TB
}

// StartCluster starts a cluster with redis-server and redis-cli --cluster
// create, and waits until every node reports cluster_state:ok.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	need(t, "redis-server", "redis-cli")
	cl := &Cluster{t: t}
	var addrs []string
	for range 6 {
		s := start(t, true, func(s *Server) []string {
			return []string{"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(s.dir, "nodes.conf"),
				"--cluster-node-timeout", "1000", "--cluster-require-full-coverage", "no",
				"--cluster-replica-validity-factor", "0"}
		})
		cl.Nodes = append(cl.Nodes, s)
		addrs = append(addrs, s.Addr)
	}
	out, err := exec.Command("redis-cli", append(append([]string{"--cluster", "create"}, addrs...),
		"--cluster-replicas", "1", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	cl.WaitOK(30 * time.Second)
	c := redis.NewClient(&redis.Options{Addr: addrs[0], MaxRetries: -1})
	defer c.Close()
	waitFor(t, "every master to have its replica", func() bool {
		slots, err := c.ClusterSlots(context.Background()).Result()
		if err != nil || len(slots) == 0 {
			return false
		}
		for _, r := range slots {
			if len(r.Nodes) < 2 {
				return false
			}
		}
		return true
	})
	return cl
}

// Addrs returns the addresses of the nodes.
func (cl *Cluster) Addrs() []string { return addrs(cl.Nodes) }

func addrs(servers []*Server) []string {
	var a []string
	for _, s := range servers {
		a = append(a, s.Addr)
	}
	return a
}

// WaitOK waits until every running node reports cluster_state:ok and knows
// which node serves every slot.
func (cl *Cluster) WaitOK(timeout time.Duration) {
	cl.t.Helper()
	deadline := time.Now().Add(timeout)
	for _, n := range cl.Nodes {
		if n.cmd == nil {
			continue
		}
		c := redis.NewClient(&redis.Options{Addr: n.Addr, MaxRetries: -1})
		for {
			info, err := c.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_slots_ok:16384") {
				break
			}
			if time.Now().After(deadline) {
				c.Close()
				cl.t.Fatalf("cluster node %s not ok after %v: %v %s", n.Addr, timeout, err, info)
			}
			time.Sleep(20 * time.Millisecond) // polling a cluster that forms
		}
		c.Close()
	}
}

// slots returns CLUSTER SLOTS as the first running node that answers
// gives it.
func (cl *Cluster) slots() []redis.ClusterSlot {
	cl.t.Helper()
	for _, n := range cl.Nodes {
		if n.cmd == nil {
			continue
		}
		c := redis.NewClient(&redis.Options{Addr: n.Addr, MaxRetries: -1})
		slots, err := c.ClusterSlots(context.Background()).Result()
		c.Close()
		if err == nil {
			return slots
		}
	}
	cl.t.Fatal("no running cluster node answers CLUSTER SLOTS")
	return nil
}

// MasterOf returns the node that serves slot now, as a running node sees
// it, and the node replicating it.
func (cl *Cluster) MasterOf(slot int) (master, replica *Server) {
	cl.t.Helper()
	for _, r := range cl.slots() {
		if slot >= int(r.Start) && slot <= int(r.End) {
			master = cl.node(r.Nodes[0].Addr)
			if len(r.Nodes) > 1 {
				replica = cl.node(r.Nodes[1].Addr)
			}
			return master, replica
		}
	}
	cl.t.Fatalf("no node serves slot %d", slot)
	return nil, nil
}

// SlotMap returns the master of each slot, as a running node sees it now.
func (cl *Cluster) SlotMap() []*Server {
	cl.t.Helper()
	m := make([]*Server, 16384)
	for _, r := range cl.slots() {
		for slot := r.Start; slot <= r.End; slot++ {
			m[slot] = cl.node(r.Nodes[0].Addr)
		}
	}
	return m
}

func (cl *Cluster) node(addr string) *Server {
	for _, n := range cl.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	cl.t.Fatalf("%s is not a node of the cluster", addr)
	return nil
}

// Role returns what ROLE says of s ("master", "slave"), or "" if it does
// not answer.
func Role(s *Server) string {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond})
	defer c.Close()
	r, err := c.Do(context.Background(), "ROLE").Slice()
	if err != nil || len(r) == 0 {
		return ""
	}
	role, _ := r[0].(string)
	return role
}

// Slot returns the Redis Cluster hash slot of key (CRC16 of the key, or of
// its {hash tag}, modulo 16384).
func Slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % 16384
}

// A Sentinel is a Sentinel set for a test: a master, its replica and three
// sentinels that monitor it as MasterName, on free loopback ports, stopped
// when the test ends. The master is taken for down after a second.
type Sentinel struct {
	MasterName string
	Master     *Server // the master at the start
	Replica    *Server
	Sentinels  []*Server
	t          testing.TB
}

// StartSentinel starts the set and waits until every sentinel knows the
// replica and the other sentinels, so that a failover can run.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	need(t, "redis-server", "redis-sentinel")
	st := &Sentinel{MasterName: "tlscache", t: t}
	st.Master = start(t, false, nil)
	st.Replica = start(t, false, func(*Server) []string {
		h, p, _ := net.SplitHostPort(st.Master.Addr)
		return []string{"--replicaof", h, p}
	})
	waitFor(t, "the replica to sync", func() bool {
		c := redis.NewClient(&redis.Options{Addr: st.Replica.Addr, MaxRetries: -1})
		defer c.Close()
		info, _ := c.Info(context.Background(), "replication").Result()
		return strings.Contains(info, "master_link_status:up")
	})
	h, p, _ := net.SplitHostPort(st.Master.Addr)
	for range 3 {
		// Sentinel rewrites its configuration file; each has its own, written
		// once.
		s := launch(t, false, func(s *Server) []string {
			_, port, _ := net.SplitHostPort(s.Addr)
			conf := filepath.Join(s.dir, "sentinel.conf")
			if _, err := os.Stat(conf); err == nil {
				return []string{"redis-sentinel", conf} // a restart: as it left it
			}
			err := os.WriteFile(conf, []byte(fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\nlogfile %s\n"+
				"sentinel monitor %s %s %s 2\nsentinel down-after-milliseconds %[4]s 1000\n"+
				"sentinel failover-timeout %[4]s 10000\nsentinel parallel-syncs %[4]s 1\n",
				port, s.dir, filepath.Join(s.dir, "sentinel.log"), st.MasterName, h, p)), 0o600)
			if err != nil {
				t.Fatal(err)
			}
			return []string{"redis-sentinel", conf}
		})
		st.Sentinels = append(st.Sentinels, s)
	}
	for _, s := range st.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
		waitFor(t, "sentinel "+s.Addr+" to know the replica and the other sentinels", func() bool {
			r, err := c.Replicas(context.Background(), st.MasterName).Result()
			if err != nil || len(r) == 0 {
				return false
			}
			o, err := c.Sentinels(context.Background(), st.MasterName).Result()
			return err == nil && len(o) == 2
		})
		c.Close()
	}
	return st
}

// Addrs returns the sentinels' addresses.
func (st *Sentinel) Addrs() []string { return addrs(st.Sentinels) }

// MasterAddr returns the master's address as the first sentinel that
// answers gives it.
func (st *Sentinel) MasterAddr() string {
	for _, s := range st.Sentinels {
		if a := masterBy(s, st.MasterName); a != "" {
			return a
		}
	}
	return ""
}

// masterBy returns the master's address as sentinel s gives it; "" if it
// does not answer.
func masterBy(s *Server, name string) string {
	c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	a, err := c.GetMasterAddrByName(context.Background(), name).Result()
	if err != nil {
		return ""
	}
	return net.JoinHostPort(a[0], a[1])
}

// Failover has a sentinel fail the master over to its replica (SENTINEL
// FAILOVER), and returns once every sentinel names the new master, with
// the time the first one did.
func (st *Sentinel) Failover() (switched time.Time) {
	st.t.Helper()
	old := st.MasterAddr()
	c := redis.NewSentinelClient(&redis.Options{Addr: st.Sentinels[0].Addr, MaxRetries: -1})
	defer c.Close()
	if err := c.Failover(context.Background(), st.MasterName).Err(); err != nil {
		st.t.Fatalf("SENTINEL FAILOVER: %v", err)
	}
	waitFor(st.t, "every sentinel to name a new master", func() bool {
		named := 0
		for _, s := range st.Sentinels {
			if a := masterBy(s, st.MasterName); a != "" && a != old {
				named++
			}
		}
		if named > 0 && switched.IsZero() {
			switched = time.Now()
		}
		return named == len(st.Sentinels)
	})
	return switched
}

// need fails or skips t (see unavailable) unless every binary is installed.
func need(t testing.TB, binaries ...string) {
	t.Helper()
	for _, bin := range binaries {
		if _, err := exec.LookPath(bin); err != nil {
			unavailable(t, bin+" is not installed (Debian packages: redis-server, redis-tools, redis-sentinel)")
		}
	}
}

// waitFor polls cond for up to 30 seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling real processes
	}
}
