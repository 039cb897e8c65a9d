package awsstub

import (
	"fmt"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// cwPathPrefix is where the SDK's Smithy RPC v2 CBOR client posts
// CloudWatch calls: /service/<service shape>/operation/<operation>.
const cwPathPrefix = "/service/GraniteServiceVersion20100801/operation/"

// Dimension is a CloudWatch metric dimension.
type Dimension struct {
	Name, Value string
}

// Datapoint is one period's statistics of one metric, as CloudWatch stores
// them: Stats maps a statistic ("Sum", "Average", "Maximum", "Minimum",
// "SampleCount", "p99", …) to its value over [Time, Time+Period).
type Datapoint struct {
	Namespace  string
	MetricName string
	Dimensions []Dimension
	Time       time.Time
	Stats      map[string]float64
}

type series struct {
	// points by period start, Unix seconds.
	points map[int64]map[string]float64
}

type cwState struct {
	series   map[string]*series
	pageSize int
}

func (c *cwState) init() { c.series = map[string]*series{} }

func seriesKey(ns, name string, dims []Dimension) string {
	d := append([]Dimension(nil), dims...)
	sort.Slice(d, func(i, j int) bool { return d[i].Name < d[j].Name })
	var b strings.Builder
	b.WriteString(ns + "\x00" + name)
	for _, x := range d {
		b.WriteString("\x00" + x.Name + "=" + x.Value)
	}
	return b.String()
}

// Put stores datapoints; a second datapoint for the same metric and time
// adds its Sum and SampleCount and replaces the other statistics.
func (s *Server) Put(points ...Datapoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range points {
		k := seriesKey(p.Namespace, p.MetricName, p.Dimensions)
		se := s.cw.series[k]
		if se == nil {
			se = &series{points: map[int64]map[string]float64{}}
			s.cw.series[k] = se
		}
		t := p.Time.Unix()
		cur := se.points[t]
		if cur == nil {
			cur = map[string]float64{}
			se.points[t] = cur
		}
		for stat, v := range p.Stats {
			if stat == "Sum" || stat == "SampleCount" {
				cur[stat] += v
			} else {
				cur[stat] = v
			}
		}
	}
}

// SetMetricPageSize makes GetMetricData answer at most n datapoints per
// page (and a NextToken); zero means no paging.
func (s *Server) SetMetricPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cw.pageSize = n
}

// The request and answer shapes of GetMetricData, member names as the
// service model names them.
type cwDimension struct {
	Name  string `cbor:"Name"`
	Value string `cbor:"Value"`
}

type cwMetric struct {
	Namespace  string        `cbor:"Namespace"`
	MetricName string        `cbor:"MetricName"`
	Dimensions []cwDimension `cbor:"Dimensions"`
}

type cwMetricStat struct {
	Metric cwMetric `cbor:"Metric"`
	Period int64    `cbor:"Period"`
	Stat   string   `cbor:"Stat"`
	Unit   *string  `cbor:"Unit"`
}

type cwQuery struct {
	ID         string        `cbor:"Id"`
	MetricStat *cwMetricStat `cbor:"MetricStat"`
	Expression *string       `cbor:"Expression"`
	Label      *string       `cbor:"Label"`
	ReturnData *bool         `cbor:"ReturnData"`
	Period     *int64        `cbor:"Period"`
	AccountID  *string       `cbor:"AccountId"`
}

type cwInput struct {
	MetricDataQueries []cwQuery `cbor:"MetricDataQueries"`
	StartTime         time.Time `cbor:"StartTime"`
	EndTime           time.Time `cbor:"EndTime"`
	NextToken         *string   `cbor:"NextToken"`
	ScanBy            *string   `cbor:"ScanBy"`
	MaxDatapoints     *int64    `cbor:"MaxDatapoints"`
}

type cwResult struct {
	ID         string      `cbor:"Id"`
	Label      string      `cbor:"Label"`
	StatusCode string      `cbor:"StatusCode"`
	Timestamps []time.Time `cbor:"Timestamps"`
	Values     []float64   `cbor:"Values"`
}

type cwOutput struct {
	MetricDataResults []cwResult `cbor:"MetricDataResults"`
	NextToken         string     `cbor:"NextToken,omitempty"`
}

var (
	cwDec = func() cbor.DecMode {
		m, err := cbor.DecOptions{TimeTag: cbor.DecTagRequired, DupMapKey: cbor.DupMapKeyEnforcedAPF}.DecMode()
		if err != nil {
			panic(err)
		}
		return m
	}()
	cwEnc = func() cbor.EncMode {
		m, err := cbor.EncOptions{Time: cbor.TimeUnixDynamic, TimeTag: cbor.EncTagRequired}.EncMode()
		if err != nil {
			panic(err)
		}
		return m
	}()
	percentile = regexp.MustCompile(`^p(\d{1,2}(\.\d{1,2})?|100)$`)
	queryID    = regexp.MustCompile(`^[a-z][a-zA-Z0-9_]*$`)
)

func writeCBOR(w http.ResponseWriter, status int, v any) {
	b, err := cwEnc.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/cbor")
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("X-Amzn-Requestid", requestID())
	w.WriteHeader(status)
	w.Write(b)
}

// writeCWError answers as CloudWatch does over RPC v2 CBOR: a __type and
// message in the body, and, because the service keeps its Query-protocol
// error codes, the code and fault in X-Amzn-Query-Error.
func writeCWError(w http.ResponseWriter, e *apiError) {
	fault := "Sender"
	if e.status >= 500 {
		fault = "Receiver"
	}
	w.Header().Set("X-Amzn-Query-Error", e.code+";"+fault)
	writeCBOR(w, e.status, map[string]string{"__type": "com.amazonaws.cloudwatch#" + e.code, "message": e.message})
}

func (s *Server) serveCloudWatch(w http.ResponseWriter, r *http.Request, body []byte) {
	op := strings.TrimPrefix(r.URL.Path, cwPathPrefix)
	if r.Header.Get("Smithy-Protocol") != "rpc-v2-cbor" {
		writeCWError(w, errf("InvalidRequest", "missing header Smithy-Protocol: rpc-v2-cbor"))
		return
	}
	_, e, ok := s.gate(r, "monitoring", op)
	if !ok {
		return
	}
	if e != nil {
		writeCWError(w, e)
		return
	}
	if op != "GetMetricData" {
		s.noteError("InvalidAction")
		writeCWError(w, errf("InvalidAction", "the stub implements GetMetricData only, not %s", op))
		return
	}
	var in cwInput
	if err := cwDec.Unmarshal(body, &in); err != nil {
		s.noteError("SerializationException")
		writeCWError(w, errf("SerializationException", "cannot decode the CBOR request: %v", err))
		return
	}
	out, aerr := s.getMetricData(in)
	if aerr != nil {
		s.noteError(aerr.code)
		writeCWError(w, aerr)
		return
	}
	writeCBOR(w, http.StatusOK, out)
}

func validPeriod(p int64) bool {
	return p == 1 || p == 5 || p == 10 || p == 30 || (p > 0 && p%60 == 0)
}

func (s *Server) getMetricData(in cwInput) (cwOutput, *apiError) {
	if len(in.MetricDataQueries) == 0 || len(in.MetricDataQueries) > 500 {
		return cwOutput{}, errf("InvalidParameterValue", "MetricDataQueries must have 1..500 members")
	}
	if in.StartTime.IsZero() || in.EndTime.IsZero() || !in.StartTime.Before(in.EndTime) {
		return cwOutput{}, errf("InvalidParameterValue", "The parameter StartTime must be less than the parameter EndTime.")
	}
	ascending := false
	if in.ScanBy != nil {
		switch *in.ScanBy {
		case "TimestampAscending":
			ascending = true
		case "TimestampDescending":
		default:
			return cwOutput{}, errf("InvalidParameterValue", "ScanBy %q", *in.ScanBy)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []cwResult
	ids := map[string]bool{}
	for _, q := range in.MetricDataQueries {
		if q.ID == "" || ids[q.ID] || !queryID.MatchString(q.ID) {
			return cwOutput{}, errf("InvalidParameterValue", "query id %q must be unique and start with a lower-case letter", q.ID)
		}
		ids[q.ID] = true
		if q.Expression != nil {
			return cwOutput{}, errf("InvalidParameterValue", "the stub does not evaluate metric math (query %s)", q.ID)
		}
		ms := q.MetricStat
		if ms == nil {
			return cwOutput{}, errf("InvalidParameterValue", "query %s has neither MetricStat nor Expression", q.ID)
		}
		if !validPeriod(ms.Period) {
			return cwOutput{}, errf("InvalidParameterValue", "The parameter MetricDataQueries.member.1.MetricStat.Period must be 1, 5, 10, 30 or a multiple of 60, got %d", ms.Period)
		}
		switch ms.Stat {
		case "Sum", "SampleCount", "Average", "Minimum", "Maximum":
		default:
			if !percentile.MatchString(ms.Stat) {
				return cwOutput{}, errf("InvalidParameterValue", "unknown statistic %q", ms.Stat)
			}
		}
		var dims []Dimension
		for _, d := range ms.Metric.Dimensions {
			dims = append(dims, Dimension{d.Name, d.Value})
		}
		res := cwResult{ID: q.ID, Label: ms.Metric.MetricName, StatusCode: "Complete"}
		if q.Label != nil {
			res.Label = *q.Label
		}
		if se := s.cw.series[seriesKey(ms.Metric.Namespace, ms.Metric.MetricName, dims)]; se != nil {
			res.Timestamps, res.Values = se.aggregate(in.StartTime.Unix(), in.EndTime.Unix(), ms.Period, ms.Stat, ascending)
		}
		if q.ReturnData == nil || *q.ReturnData {
			all = append(all, res)
		}
	}
	return s.cw.paginate(all, in.NextToken)
}

// aggregate folds stored datapoints into periods of p seconds aligned on
// start, as CloudWatch answers for a period longer than the resolution:
// sums add, averages average, extremes take the extreme. A percentile
// cannot be merged from percentiles; the stub takes the highest one, which
// is what a single stored period gives exactly and an upper bound
// otherwise.
func (se *series) aggregate(start, end, p int64, stat string, ascending bool) ([]time.Time, []float64) {
	type acc struct {
		v float64
		n int
	}
	buckets := map[int64]*acc{}
	for t, stats := range se.points {
		if t < start || t >= end {
			continue
		}
		v, ok := stats[stat]
		if !ok {
			continue
		}
		b := start + (t-start)/p*p
		a := buckets[b]
		if a == nil {
			buckets[b] = &acc{v: v, n: 1}
			continue
		}
		a.n++
		switch {
		case stat == "Sum" || stat == "SampleCount" || stat == "Average":
			a.v += v
		case stat == "Minimum":
			a.v = math.Min(a.v, v)
		default:
			a.v = math.Max(a.v, v)
		}
	}
	keys := make([]int64, 0, len(buckets))
	for k := range buckets {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if ascending {
			return keys[i] < keys[j]
		}
		return keys[i] > keys[j]
	})
	ts := make([]time.Time, 0, len(keys))
	vs := make([]float64, 0, len(keys))
	for _, k := range keys {
		a := buckets[k]
		v := a.v
		if stat == "Average" {
			v /= float64(a.n)
		}
		ts = append(ts, time.Unix(k, 0).UTC())
		vs = append(vs, v)
	}
	return ts, vs
}

// paginate cuts the results to the page size; the token is the number of
// datapoints already returned.
func (c *cwState) paginate(all []cwResult, token *string) (cwOutput, *apiError) {
	skip := 0
	if token != nil {
		n, err := strconv.Atoi(*token)
		if err != nil || n < 0 {
			return cwOutput{}, errf("InvalidNextToken", "invalid NextToken %q", *token)
		}
		skip = n
	}
	if c.pageSize <= 0 {
		if skip > 0 {
			return cwOutput{}, errf("InvalidNextToken", "invalid NextToken %q", *token)
		}
		return cwOutput{MetricDataResults: all}, nil
	}
	out := cwOutput{}
	seen, taken := 0, 0
	for _, r := range all {
		part := cwResult{ID: r.ID, Label: r.Label, StatusCode: "Complete", Timestamps: []time.Time{}, Values: []float64{}}
		for i := range r.Values {
			if seen < skip {
				seen++
				continue
			}
			if taken == c.pageSize {
				part.StatusCode = "PartialData"
				out.NextToken = fmt.Sprint(skip + taken)
				break
			}
			part.Timestamps = append(part.Timestamps, r.Timestamps[i])
			part.Values = append(part.Values, r.Values[i])
			taken++
		}
		out.MetricDataResults = append(out.MetricDataResults, part)
		if out.NextToken != "" {
			break
		}
	}
	return out, nil
}

var timeAfter = time.After
