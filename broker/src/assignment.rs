//! Assignment changes, as a group member reports them between its records (see
//! [`MemberEvent`](crate::MemberEvent)).

/// A change of the partitions a group member owns, reported by
/// [`GroupMember::recv_event`](crate::GroupMember::recv_event) before any record read under
/// the new assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssignmentChange {
    /// The group generation the member's assignment now belongs to.
    pub generation: u64,
    /// The partitions it owns now, in order.
    pub partitions: Vec<u32>,
    /// The partitions it gained since the last report; it reads each from the group's
    /// committed offset.
    pub assigned: Vec<u32>,
    /// The partitions it lost since the last report: their next owner resumes from the
    /// committed offset, and commits of what this member read there are refused. A partition
    /// lost and got back in between is both revoked and assigned.
    pub revoked: Vec<u32>,
}

/// What a member owns: `(partition, generation its tenure began in)`, by partition.
pub(crate) type Holdings = Vec<(u32, u64)>;

/// The change from `reported` to `now`, both ordered by partition.
pub(crate) fn change(generation: u64, reported: &Holdings, now: &Holdings) -> AssignmentChange {
    AssignmentChange {
        generation,
        partitions: now.iter().map(|&(p, _)| p).collect(),
        assigned: now
            .iter()
            .filter(|held| !reported.contains(held))
            .map(|&(p, _)| p)
            .collect(),
        revoked: reported
            .iter()
            .filter(|held| !now.contains(held))
            .map(|&(p, _)| p)
            .collect(),
    }
}
