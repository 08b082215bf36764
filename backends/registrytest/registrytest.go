// Package registrytest is the conformance suite for core.Registry: the same tests
// run against every backend (memory, etcd), so that the core sees one behaviour.
// It checks only what core/registry.go documents.
//
// A backend's test calls Run with a function that makes a fresh, empty registry
// and gives control of the clock its leases expire by:
//
//	func TestConformance(t *testing.T) {
//		registrytest.Run(t, func(t *testing.T) registrytest.Instance {
//			clock := memory.NewManualClock(time.Unix(0, 0))
//			reg := memory.New(clock)
//			return registrytest.Instance{Registry: reg, Advance: func(d time.Duration) {
//				clock.Advance(d)
//				reg.Expire()
//			}}
//		})
//	}
package registrytest

import (
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// Instance is one fresh, empty registry under test plus control of its clock.
type Instance struct {
	Registry core.Registry
	// Advance moves the registry's clock forward by d; leases (presence, leadership) expire by this clock.
	Advance func(d time.Duration)
}

// Timing of the suite. Lease TTLs are in the registry's (virtual) time; the waits
// are real time, bounded.
const (
	// ttl is the TTL of every presence and leadership lease the suite takes.
	ttl = 10 * time.Second
	// wakeWait bounds the wait for a wake-up that must come.
	wakeWait = 5 * time.Second
	// quietWait is how long a wake-up that must not come is waited for, after
	// the same change was seen to wake another scope.
	quietWait = 150 * time.Millisecond
	// settleWait is how long a channel must stay silent before a test starts
	// counting wake-ups; settling gives up after settleMax.
	settleWait = 30 * time.Millisecond
	settleMax  = 2 * time.Second
)

// conformanceTest is one test of the suite.
type conformanceTest struct {
	name string
	fn   func(t *testing.T, in Instance)
}

// tests lists the suite in the order it runs.
var tests = []conformanceTest{
	{"CreateUnitStoresUnitAndContents", testCreateUnitStoresUnitAndContents},
	{"CreateUnitIsCreateOnce", testCreateUnitIsCreateOnce},
	{"UnitsSortedByName", testUnitsSortedByName},
	{"UnitReadsOne", testUnitReadsOne},
	{"UnitContentsUnknownHash", testUnitContentsUnknownHash},
	{"DestroyUnit", testDestroyUnit},
	{"DestroyUnitKeepsPlacement", testDestroyUnitKeepsPlacement},
	{"RecreateAfterDestroy", testRecreateAfterDestroy},
	{"SetTargetState", testSetTargetState},
	{"RevisionsChangeWithEachWrite", testRevisionsChangeWithEachWrite},
	{"SetTargetStateMirrorsPlacements", testSetTargetStateMirrorsPlacements},
	{"ReplaceUnit", testReplaceUnit},
	{"ReplaceUnitGlobalFlag", testReplaceUnitGlobalFlag},

	{"ApplySchedulePlacesSorted", testApplySchedulePlacesSorted},
	{"ApplyScheduleUpdatesAndUnplaces", testApplyScheduleUpdatesAndUnplaces},
	{"ApplyScheduleLargeBatch", testApplyScheduleLargeBatch},
	{"MachinePlacementsOnlyThatMachine", testMachinePlacementsOnlyThatMachine},
	{"ApplyScheduleSkipsStalePlaces", testApplyScheduleSkipsStalePlaces},

	{"LeadershipIsExclusive", testLeadershipIsExclusive},
	{"DeposedEngineWritesNothing", testDeposedEngineWritesNothing},
	{"ExpiredLeaseFenceIsStale", testExpiredLeaseFenceIsStale},
	{"ForeignFenceIsStale", testForeignFenceIsStale},
	{"EpochsIncreaseAcrossLeaders", testEpochsIncreaseAcrossLeaders},
	{"RenewalKeepsEpoch", testRenewalKeepsEpoch},
	{"ResignLeadership", testResignLeadership},
	{"LeadershipIsPerSession", testLeadershipIsPerSession},

	{"HeartbeatAndMachines", testHeartbeatAndMachines},
	{"HeartbeatUpdatesRecord", testHeartbeatUpdatesRecord},
	{"PresenceExpires", testPresenceExpires},
	{"SecondSessionConflicts", testSecondSessionConflicts},
	{"TakeOverAfterExpiry", testTakeOverAfterExpiry},
	{"Leave", testLeave},
	{"DynamicMetadata", testDynamicMetadata},

	{"PublishRequiresPresence", testPublishRequiresPresence},
	{"UnitStatesSorted", testUnitStatesSorted},
	{"RemovedOnlyThatMachine", testRemovedOnlyThatMachine},
	{"StatesVanishWithPresence", testStatesVanishWithPresence},

	{"NotifyEngineOnUnitCreate", testNotifyEngineOnUnitCreate},
	{"NotifyEngineOnTargetState", testNotifyEngineOnTargetState},
	{"NotifyEngineOnMachineJoin", testNotifyEngineOnMachineJoin},
	{"NotifyEngineOnMachineExpiry", testNotifyEngineOnMachineExpiry},
	{"NotifyMachineOnPlacement", testNotifyMachineOnPlacement},
	{"NotifyMachineOnGlobalUnit", testNotifyMachineOnGlobalUnit},
	{"NotifyMachineOnTargetState", testNotifyMachineOnTargetState},
	{"NotifyMachineNotOnOtherPlacement", testNotifyMachineNotOnOtherPlacement},
	{"NotifyOnMetadata", testNotifyOnMetadata},
	{"NotifyClosedOnCancel", testNotifyClosedOnCancel},
}

// Run runs every conformance test against registries made by newInstance (called once per subtest).
func Run(t *testing.T, newInstance func(t *testing.T) Instance) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := newInstance(t)
			if in.Registry == nil || in.Advance == nil {
				t.Fatal("newInstance returned an Instance without Registry or Advance")
			}
			tc.fn(t, in)
		})
	}
}
