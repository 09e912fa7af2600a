package console

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/dunningworks/billing/statemachine"
)

// machinePicture is the subscription state machine drawn as one row of states with the current one
// highlighted and an arc to every state one trigger away. It is computed from the machine itself
// (SubscriptionStatuses, AllowedSubscriptionTriggers and FireSubscription), so the picture cannot drift
// from the rules the service enforces.
type machinePicture struct {
	Width, Height int
	Nodes         []machineNode
	Edges         []machineEdge
}

type machineNode struct {
	State    string
	X, Y     int // top-left corner
	TextX    int
	Current  bool
	Next     bool
	Entitled bool
}

type machineEdge struct {
	Triggers       string
	Path           string
	LabelX, LabelY int
}

const (
	nodeW, nodeH, nodeGap = 112, 34, 12
	arcBase, arcStep      = 30, 26 // the nearest arc's height, and how much higher each farther one goes
	arcRoom               = 120    // space above the nodes for arcs and their labels
)

func picture(current statemachine.SubscriptionStatus) machinePicture {
	states := statemachine.SubscriptionStatuses()
	p := machinePicture{Width: len(states)*(nodeW+nodeGap) - nodeGap + 2, Height: arcRoom + nodeH + 4}
	x := map[statemachine.SubscriptionStatus]int{}
	for i, s := range states {
		x[s] = 1 + i*(nodeW+nodeGap)
	}
	// Where each allowed trigger leads; several triggers to one state share one arc.
	var order []statemachine.SubscriptionStatus
	via := map[statemachine.SubscriptionStatus][]string{}
	for _, t := range statemachine.AllowedSubscriptionTriggers(current) {
		to, err := statemachine.FireSubscription(context.Background(), current, t)
		if err != nil {
			continue // cannot happen for an allowed trigger; a missing arc is better than a broken page
		}
		if _, seen := via[to]; !seen {
			order = append(order, to)
		}
		via[to] = append(via[to], string(t))
	}
	for _, s := range states {
		_, next := via[s]
		p.Nodes = append(p.Nodes, machineNode{State: string(s), X: x[s], Y: arcRoom, TextX: x[s] + nodeW/2,
			Current: s == current, Next: next, Entitled: statemachine.Entitled(s)})
	}
	// Arcs go above the row. Each side's arcs are stacked by length, nearest lowest, so neither the arcs
	// nor their labels cross.
	top := arcRoom
	var left, right []statemachine.SubscriptionStatus
	for _, to := range order {
		switch {
		case x[to] < x[current]:
			left = append(left, to)
		case x[to] > x[current]:
			right = append(right, to)
		}
	}
	for _, side := range [][]statemachine.SubscriptionStatus{left, right} {
		sort.Slice(side, func(i, j int) bool { return absInt(x[side[i]]-x[current]) < absInt(x[side[j]]-x[current]) })
		for rank, to := range side {
			x1, x2 := x[current]+nodeW/2, x[to]+nodeW/2
			// Start and end off the centres, so arcs leaving and entering a node do not meet.
			if x2 > x1 {
				x1, x2 = x1+12+rank*6, x2-8
			} else {
				x1, x2 = x1-12-rank*6, x2+8
			}
			h := arcBase + rank*arcStep
			p.Edges = append(p.Edges, machineEdge{
				Triggers: strings.Join(via[to], ", "),
				Path:     fmt.Sprintf("M %d %d C %d %d, %d %d, %d %d", x1, top, x1, top-h, x2, top-h, x2, top-2),
				LabelX:   (x1 + x2) / 2,
				LabelY:   top - h*3/4 - 4,
			})
		}
	}
	return p
}

func absInt(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
