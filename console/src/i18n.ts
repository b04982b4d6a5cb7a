import { createI18n } from 'vue-i18n'

const zh = {
  app: { title: '乡村振兴资金合规监管平台', short: '资金合规', lang: 'English', signOut: '退出', skip: '跳到主要内容' },
  nav: { inbox: '违规收件箱', funds: '资金去向', overview: '区县概览', import: '数据导入', exports: '导出与报表' },
  signIn: {
    title: '登录', pick: '选择一个演示身份登录（仅开发环境）', enter: '进入', oidc: '通过统一身份认证登录',
    none: '网关未配置登录方式', devNote: '开发环境：身份由网关用开发密钥签发，有效期 1 小时。',
  },
  role: { compliance: '合规指导组', auditor: '审计', bureau: '财政局', admin: '管理员' },
  dept: {
    inspection: '市委巡察办', finance: '财政局', agriculture: '农业农村局', audit: '审计局', development: '发展和改革局',
    housing: '住房和城乡建设局', natural_resources: '自然资源局', trading: '公共资源交易中心', discipline: '纪委监委',
  },
  severity: { low: '低', medium: '中', high: '高', critical: '严重' },
  status: { raised: '待处理', acknowledged: '已确认', rectified: '已整改', dismissed: '已排除', resolved: '已化解' },
  action: {
    acknowledge: '确认', rectify: '整改', dismiss: '排除', resolve: '化解', assign: '指派',
    bulkAcknowledge: '批量确认', done: '已提交：{n} 条', failed: '失败：{n} 条',
  },
  inbox: {
    title: '违规收件箱', department: '部门', region: '区县/镇街', rule: '规则', severity: '严重程度', status: '状态',
    dateRange: '发现日期', from: '开始', to: '结束', search: '查询', reset: '重置', live: '实时', liveOn: '实时推送已连接',
    liveOff: '实时推送未连接', newMarker: '新', newCount: '{n} 条新违规', countsTitle: '各部门违规数', total: '合计',
    raisedAt: '发现时间', occurredAt: '发生时间', fund: '指标文号', explanation: '说明', more: '加载更多', end: '已全部加载',
    selected: '已选 {n} 条', assignee: '负责人', due: '整改期限', overdue: '已逾期', empty: '没有符合条件的违规',
  },
  violation: {
    title: '违规详情', explanation: '说明', rule: '规则', version: '版本', legalBasis: '法律依据', evidence: '证据事件',
    values: '规则读取的数值', timeline: '处理记录', actions: '可执行操作', raised: '发现', note: '备注', dueDate: '整改期限',
    reason: '排除理由', document: '整改材料 SHA-256', submit: '提交', cancel: '取消', trace: '追踪编号',
    noActions: '当前身份无可执行操作', pending: '已提交，等待合规服务记录…', region: '地区', fund: '资金', trail: '查看资金轨迹',
    assignee: '负责人', unassigned: '未指派', back: '返回收件箱', eventType: '事件类型', amount: '金额',
  },
  fund: {
    title: '资金去向', pick: '选择资金', flow: '资金流向（市 → 区县 → 镇街 → 村 → 收款方）', received: '收到',
    passedDown: '下拨', spent: '支出', idle: '闲置', contracted: '合同', returned: '退回', trail: '资金轨迹', level: '层级',
    verified: '已验证', failed: '验证失败', verifying: '验证中', verifyAll: '浏览器验证（SHA-256 + Ed25519）',
    verifiedCount: '{ok}/{n} 条已验证', allocated: '下达金额', deadline: '期限', vendor: '收款方', node: '节点',
    checks: '检查项', noKey: '网关未提供日志公钥，无法验证', withheld: '叶子字节不向本区域提供：仅验证了列出的哈希',
    unreadable: '（叶子数据无法解析）', reason: '原因',
    problem: {
      leaf_unparseable: '叶子数据无法解析', leaf_hash: '叶子哈希与日志不符', column_mismatch: '索引列与叶子不符',
      chain_gap: '轨迹链有缺口', request: '无法取得包含证明',
    },
  },
  level: { province: '省', city: '市', county: '区县', town: '镇街', village: '村', vendor: '收款方' },
  overview: {
    title: '区县概览', month: '月份', county: '区县', total: '违规数', amount: '涉及金额', rate: '整改率', overdue: '逾期案件',
    byDept: '各部门违规', bySeverity: '严重程度', map: '江门市七个县级行政区', open: '未办结', allMonths: '全部月份',
    report: '月度报告',
  },
  import: {
    title: '数据导入', file: '选择 CSV / XLSX / JSONL 文件', eventType: '事件类型（文件未注明时）', region: '默认地区代码',
    bureau: '默认来源单位', dryRun: '试运行（只校验）', publish: '发布', row: '行', field: '字段', error: '错误',
    accepted: '通过', rejected: '错误', already: '已存在', progress: '发布进度', ok: '全部通过，可以发布', needBureau: '需要财政局身份',
  },
  exports: {
    title: '导出与报表', violations: '违规及处理状态', xlsx: '导出 XLSX', csv: '导出 CSV', report: '月度报告（可打印）',
    county: '区县', month: '月份', open: '打开报告', print: '打印', generated: '生成时间', ytd: '本年累计',
  },
  common: { loading: '加载中…', error: '出错了', all: '全部', yes: '是', no: '否', close: '关闭' },
}

const en: typeof zh = {
  app: { title: 'Rural Revitalization Fund Compliance', short: 'Fund compliance', lang: '中文', signOut: 'Sign out', skip: 'Skip to main content' },
  nav: { inbox: 'Violation inbox', funds: 'Where is the money', overview: 'County overview', import: 'Import', exports: 'Exports & reports' },
  signIn: {
    title: 'Sign in', pick: 'Pick a demo identity (development only)', enter: 'Enter', oidc: 'Sign in with the identity provider',
    none: 'The gateway has no sign-in configured', devNote: 'Development: the gateway signs a 1-hour token with its development key.',
  },
  role: { compliance: 'Compliance group', auditor: 'Auditor', bureau: 'Finance bureau', admin: 'Administrator' },
  dept: {
    inspection: 'Inspection Office', finance: 'Finance', agriculture: 'Agriculture', audit: 'Audit', development: 'Development & Reform',
    housing: 'Housing', natural_resources: 'Natural Resources', trading: 'Public Resources Trading', discipline: 'Discipline Inspection',
  },
  severity: { low: 'Low', medium: 'Medium', high: 'High', critical: 'Critical' },
  status: { raised: 'Raised', acknowledged: 'Acknowledged', rectified: 'Rectified', dismissed: 'Dismissed', resolved: 'Resolved' },
  action: {
    acknowledge: 'Acknowledge', rectify: 'Rectify', dismiss: 'Dismiss', resolve: 'Resolve', assign: 'Assign',
    bulkAcknowledge: 'Acknowledge selected', done: 'Submitted: {n}', failed: 'Failed: {n}',
  },
  inbox: {
    title: 'Violation inbox', department: 'Department', region: 'County / town', rule: 'Rule', severity: 'Severity', status: 'Status',
    dateRange: 'Raised', from: 'From', to: 'To', search: 'Search', reset: 'Reset', live: 'Live', liveOn: 'Live updates connected',
    liveOff: 'Live updates not connected', newMarker: 'New', newCount: '{n} new violations', countsTitle: 'Violations per department',
    total: 'Total', raisedAt: 'Raised', occurredAt: 'Occurred', fund: 'Fund', explanation: 'Explanation', more: 'Load more',
    end: 'All loaded', selected: '{n} selected', assignee: 'Assignee', due: 'Due', overdue: 'Overdue', empty: 'No matching violations',
  },
  violation: {
    title: 'Violation', explanation: 'Explanation', rule: 'Rule', version: 'Version', legalBasis: 'Legal basis', evidence: 'Evidence events',
    values: 'Values the rule read', timeline: 'Case timeline', actions: 'Actions', raised: 'Raised', note: 'Note', dueDate: 'Due date',
    reason: 'Reason', document: 'Document SHA-256', submit: 'Submit', cancel: 'Cancel', trace: 'Trace id',
    noActions: 'No action is open to you', pending: 'Submitted; waiting for compliance to record it…', region: 'Region', fund: 'Fund',
    trail: 'Fund trail', assignee: 'Assignee', unassigned: 'Unassigned', back: 'Back to the inbox', eventType: 'Event type',
    amount: 'Amount',
  },
  fund: {
    title: 'Where is the money', pick: 'Fund', flow: 'Flow (city → county → town → village → payee)', received: 'Received',
    passedDown: 'Passed down', spent: 'Spent', idle: 'Idle', contracted: 'Contracted', returned: 'Returned', trail: 'Trail', level: 'Level',
    verified: 'Verified', failed: 'Verification failed', verifying: 'Verifying', verifyAll: 'Checked in the browser (SHA-256 + Ed25519)',
    verifiedCount: '{ok}/{n} verified', allocated: 'Allocated', deadline: 'Deadline', vendor: 'Payee', node: 'Node', checks: 'Checks',
    noKey: 'The gateway offers no log key; cannot verify',
    withheld: 'leaf bytes withheld from your region: the listed hash was proven, not hashed here',
    unreadable: '(leaf bytes unreadable)', reason: 'Reason',
    problem: {
      leaf_unparseable: 'leaf bytes unreadable', leaf_hash: 'leaf hash differs from the log',
      column_mismatch: 'index columns differ from the leaf', chain_gap: 'gap in the trail chain',
      request: 'no inclusion proof could be fetched',
    },
  },
  level: { province: 'Province', city: 'City', county: 'County', town: 'Town', village: 'Village', vendor: 'Payee' },
  overview: {
    title: 'County overview', month: 'Month', county: 'County', total: 'Violations', amount: 'Amount concerned', rate: 'Rectification rate',
    overdue: 'Overdue', byDept: 'By department', bySeverity: 'By severity', map: "Jiangmen's seven county-level divisions", open: 'Open',
    allMonths: 'All months', report: 'Monthly report',
  },
  import: {
    title: 'Import', file: 'Choose a CSV / XLSX / JSONL file', eventType: 'Event type (if the file has none)', region: 'Default region code',
    bureau: 'Default source bureau', dryRun: 'Dry run (validate only)', publish: 'Publish', row: 'Row', field: 'Field', error: 'Error',
    accepted: 'Accepted', rejected: 'Errors', already: 'Already recorded', progress: 'Publishing', ok: 'Every row is valid; ready to publish',
    needBureau: 'Needs a finance bureau identity',
  },
  exports: {
    title: 'Exports & reports', violations: 'Violations and case status', xlsx: 'Export XLSX', csv: 'Export CSV',
    report: 'Monthly report (printable)', county: 'County', month: 'Month', open: 'Open report', print: 'Print', generated: 'Generated',
    ytd: 'Year to date',
  },
  common: { loading: 'Loading…', error: 'Error', all: 'All', yes: 'Yes', no: 'No', close: 'Close' },
}

const saved = typeof localStorage === 'undefined' ? null : localStorage.getItem('fundtrail.console.locale')

export const i18n = createI18n({
  legacy: false,
  locale: saved === 'en' ? 'en' : 'zh-CN',
  fallbackLocale: 'zh-CN',
  messages: { 'zh-CN': zh, en },
})

export const DEPARTMENTS = Object.keys(zh.dept)
export const SEVERITIES = Object.keys(zh.severity)
export const STATUSES = Object.keys(zh.status)
