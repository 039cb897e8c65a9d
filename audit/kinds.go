package audit

import (
	"encoding/json"
	"fmt"
)

// The Data of the kinds the evidence report reads (audit/export). Every
// field is optional: a record holds what its writer knew, and the report
// says what a section lacks. Writers may add members; readers ignore what
// they do not know. Weights are the new side's share in percent (0-100).

// SetData stores v, marshalled to JSON, as r.Data. Append canonicalizes
// it again, so a map's order does not matter.
func (r *Record) SetData(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("record data: %w", err)
	}
	r.Data = b
	return nil
}

// DecodeData unmarshals r.Data into v; empty Data leaves v untouched.
func (r *Record) DecodeData(v any) error {
	if len(r.Data) == 0 {
		return nil
	}
	return json.Unmarshal(r.Data, v)
}

// FileDigest names a file and its content.
type FileDigest struct {
	Path string `json:"path"`
	// SHA256 is "sha256:<hex>" of the file's bytes.
	SHA256 string `json:"sha256"`
}

// Placement is where one service runs in one environment.
type Placement struct {
	Service     string `json:"service"`
	Environment string `json:"environment"`
	Namespace   string `json:"namespace"`
	// Cluster is the Argo CD destination (name or API server URL); empty
	// when the layout leaves it to the user.
	Cluster string `json:"cluster,omitempty"`
	// ServiceAccount is the Kubernetes service account; with IRSA, Role is
	// the IAM role it assumes. Empty when none.
	ServiceAccount string `json:"serviceAccount,omitempty"`
	Role           string `json:"role,omitempty"`
}

// ConvertData is the Data of a KindConvert record: what was read, what
// was written, and where each service will run. Environment segregation
// is shown from Placements.
type ConvertData struct {
	Inputs  []FileDigest `json:"inputs,omitempty"`
	Outputs []FileDigest `json:"outputs,omitempty"`
	// OutputDir is the layout's directory, as the user named it.
	OutputDir  string      `json:"outputDir,omitempty"`
	Services   []string    `json:"services,omitempty"`
	Placements []Placement `json:"placements,omitempty"`
	// Findings counts the mapping report's lines by status (mapped,
	// warning, dropped, fill).
	Findings map[string]int `json:"findings,omitempty"`
}

// PlanData is the Data of a KindPlanLoaded record.
type PlanData struct {
	// Steps are the new side's weights, in order.
	Steps []float64 `json:"steps,omitempty"`
	// Router and Metrics name the backends the plan uses.
	Router  string `json:"router,omitempty"`
	Metrics string `json:"metrics,omitempty"`
	// Environment is the environment the shift runs in ("prod").
	Environment string `json:"environment,omitempty"`
	// Resumed says the run continued a saved state instead of starting.
	Resumed bool `json:"resumed,omitempty"`
	// StartedBy is who started the shift: approvals must come from others.
	StartedBy string `json:"startedBy,omitempty"`
}

// StepData is the Data of step-started, pause, resume, promote, abort,
// completed and other records that concern one step.
type StepData struct {
	// Step is the 0-based index of the plan step.
	Step int `json:"step"`
	// Weight is the step's target weight for the new side.
	Weight float64 `json:"weight"`
	// Reason is why, as the actor or the engine gave it.
	Reason string `json:"reason,omitempty"`
}

// WeightData is the Data of weight-set and weight-confirmed records.
type WeightData struct {
	Step int `json:"step"`
	// Want is the new side's weight asked of the router.
	Want float64 `json:"want"`
	// Got is the weight read back from the router (weight-confirmed,
	// router-drift).
	Got *float64 `json:"got,omitempty"`
	// Router names the router.
	Router string `json:"router,omitempty"`
}

// AnalysisData is the Data of a KindAnalysis record: one measurement.
type AnalysisData struct {
	Step   int    `json:"step"`
	Metric string `json:"metric"`
	// Side is "new", "legacy", or "" for a comparison of both.
	Side string `json:"side,omitempty"`
	// Value is what was measured; Baseline the legacy side's value when
	// the check compares.
	Value    float64  `json:"value"`
	Baseline *float64 `json:"baseline,omitempty"`
	// Threshold and Op state the limit: Value Op Threshold passes ("<=").
	Threshold *float64 `json:"threshold,omitempty"`
	Op        string   `json:"op,omitempty"`
	// Verdict is "pass", "fail" or "inconclusive".
	Verdict string `json:"verdict"`
	// Window is the measurement window ("30s"); Requests how many
	// requests it held.
	Window   string `json:"window,omitempty"`
	Requests int64  `json:"requests,omitempty"`
}

// ApprovalData is the Data of approval and refusal records. The record's
// Actor is the person who approved or refused.
type ApprovalData struct {
	Step int `json:"step"`
	// Group is the group the step requires approvers from; Required how
	// many distinct approvers.
	Group    string `json:"group,omitempty"`
	Required int    `json:"required,omitempty"`
	// Groups are the actor's groups, from the token file.
	Groups []string `json:"groups,omitempty"`
	// StartedBy is who started the shift (four-eyes: never an approver).
	StartedBy string `json:"startedBy,omitempty"`
	Reason    string `json:"reason,omitempty"`
	// Satisfied says this approval completed the step's requirement.
	Satisfied bool `json:"satisfied,omitempty"`
}

// RollbackData is the Data of rollback and rolled-back records.
type RollbackData struct {
	Step int `json:"step"`
	// Reason says what failed: the analysis verdict, an abort, a drill.
	Reason string `json:"reason"`
	// FromWeight is the new side's weight before the rollback.
	FromWeight float64 `json:"fromWeight"`
	// Trigger is the Seq of the record that caused it (a failed
	// analysis, an abort); zero when none.
	Trigger uint64 `json:"trigger,omitempty"`
	// DetectionSeconds is from the first failing measurement to the
	// decision; RollbackSeconds from the decision to the read-back
	// showing all traffic on legacy (rolled-back).
	DetectionSeconds *float64 `json:"detectionSeconds,omitempty"`
	RollbackSeconds  *float64 `json:"rollbackSeconds,omitempty"`
}

// DrillMeasures are what a drill measures, and what it allows.
type DrillMeasures struct {
	DetectionSeconds *float64 `json:"detectionSeconds,omitempty"`
	RollbackSeconds  *float64 `json:"rollbackSeconds,omitempty"`
	ClientErrors     *int64   `json:"clientErrors,omitempty"`
	Requests         *int64   `json:"requests,omitempty"`
}

// DrillData is the Data of a KindDrill record.
type DrillData struct {
	// Name is the drill's name in its file; Experiment what it did:
	// "kill-new", "latency", "errors", "drop-connections", "blackhole",
	// "restart-proxy".
	Name       string `json:"name"`
	Experiment string `json:"experiment"`
	// Target is what it acted on ("new", "legacy", "proxy").
	Target   string        `json:"target,omitempty"`
	Limits   DrillMeasures `json:"limits"`
	Measured DrillMeasures `json:"measured"`
	Passed   bool          `json:"passed"`
	// Message explains a failure.
	Message string `json:"message,omitempty"`
}
