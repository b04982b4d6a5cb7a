import { createRouter, createWebHistory } from 'vue-router'
import { session } from './auth'

export const router = createRouter({
  history: createWebHistory('/console/'),
  routes: [
    { path: '/', redirect: '/inbox' },
    { path: '/signin', name: 'signin', component: () => import('./views/SignIn.vue'), meta: { public: true } },
    { path: '/callback', name: 'callback', component: () => import('./views/Callback.vue'), meta: { public: true } },
    { path: '/inbox', name: 'inbox', component: () => import('./views/Inbox.vue') },
    { path: '/violations/:id', name: 'violation', component: () => import('./views/ViolationPage.vue'), props: true },
    { path: '/funds/:doc?', name: 'fund', component: () => import('./views/FundPage.vue'), props: true },
    { path: '/overview', name: 'overview', component: () => import('./views/Overview.vue') },
    { path: '/import', name: 'import', component: () => import('./views/ImportPage.vue') },
    { path: '/exports', name: 'exports', component: () => import('./views/Exports.vue') },
    { path: '/report/:county/:month', name: 'report', component: () => import('./views/MonthlyReport.vue'), props: true },
    { path: '/:rest(.*)*', redirect: '/inbox' },
  ],
})

router.beforeEach((to) => {
  if (!to.meta.public && !session.value) return { name: 'signin', query: { next: to.fullPath } }
  if (to.name === 'inbox' && session.value?.identity.role === 'bureau') return { name: 'import' }
  return true
})
